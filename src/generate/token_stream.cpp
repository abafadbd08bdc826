// TokenStream (see token_stream.h).
#include "generate/token_stream.h"

#include <algorithm>

#include "tensor/error.h"

namespace lnx::generate {

namespace {

Session prefilled(const models::LMModel& model, const std::vector<int32_t>& prompt) {
  LNX_CHECK(!prompt.empty(), ValueError, "[generate] the prompt is empty (give at least one token)");
  Session s(model, 1);
  s.prefill(prompt);
  return s;
}

}  // namespace

TokenStream::TokenStream(const models::LMModel& model, const std::vector<int32_t>& prompt,
                         const SamplingOptions& options)
    : TokenStream(prefilled(model, prompt), options) {}

TokenStream::TokenStream(Session session, const SamplingOptions& options)
    : session_(std::move(session)), options_(options), matcher_(options) {
  check_options(options_);
  LNX_CHECK(session_.num_sequences() == 1, ValueError, "[generate] a TokenStream runs one sequence; the session has {}",
            session_.num_sequences());
  (void)session_.logits(0);  // must be prefilled
  done_ = options_.max_new_tokens == 0;
}

std::optional<int32_t> TokenStream::next() {
  if (done_) return std::nullopt;
  if (pending_) {
    session_.step(*pending_);
    pending_.reset();
  }
  const int32_t token = session_.sample(options_, 0);
  ++produced_;
  const bool stop_token =
      std::find(options_.stop_tokens.begin(), options_.stop_tokens.end(), token) != options_.stop_tokens.end();
  const bool stop_string = matcher_.push(token);
  done_ = stop_token || stop_string || produced_ >= options_.max_new_tokens;
  if (!done_) pending_ = token;
  return token;
}

}  // namespace lnx::generate
