// TokenStream: pull-style generation over one sequence. A generator object (not a thread)
// holding a Session: each next() samples one token (feeding the previous one first), until a
// stop token, a stop string, max_new_tokens, after which next() returns nullopt. It yields
// exactly the tokens of generate(model, prompt, options).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "generate/sampling.h"
#include "generate/session.h"

namespace lnx::generate {

class TokenStream {
 public:
  // Prefills prompt (chunk mode) into a fresh one-sequence session.
  TokenStream(const models::LMModel& model, const std::vector<int32_t>& prompt, const SamplingOptions& options);
  // Continues a prefilled one-sequence session (taken over by the stream).
  TokenStream(Session session, const SamplingOptions& options);

  std::optional<int32_t> next();
  bool done() const { return done_; }
  // The session; its state includes every yielded token but the last one, which is fed only
  // when the next token is pulled (a finished stream never feeds it).
  const Session& session() const { return session_; }

 private:
  Session session_;
  SamplingOptions options_;
  StopStringMatcher matcher_;
  std::optional<int32_t> pending_;  // yielded, not yet fed
  int64_t produced_ = 0;
  bool done_ = false;
};

}  // namespace lnx::generate
