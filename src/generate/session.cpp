// Session: prefill, step, decode, fork (see session.h; save/load are in state_file.cpp).
#include "generate/session.h"

#include <algorithm>

#include "generate/state_ops.h"
#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::generate {

Session::Session(const models::LMModel& model, int64_t num_sequences) : model_(&model) {
  LNX_CHECK(num_sequences >= 1, ValueError, "[generate] a session needs at least one sequence, got {}", num_sequences);
  logits_.resize(static_cast<size_t>(num_sequences));
  tokens_.resize(static_cast<size_t>(num_sequences));
  samplers_.resize(static_cast<size_t>(num_sequences));
}

const std::vector<int32_t>& Session::tokens(int64_t seq) const {
  LNX_CHECK(seq >= 0 && seq < num_sequences(), ValueError, "[generate] sequence {} is out of range [0, {})", seq,
            num_sequences());
  return tokens_[static_cast<size_t>(seq)];
}

Tensor Session::logits(int64_t seq) const {
  LNX_CHECK(seq >= 0 && seq < num_sequences(), ValueError, "[generate] sequence {} is out of range [0, {})", seq,
            num_sequences());
  LNX_CHECK(logits_[static_cast<size_t>(seq)].defined(), ValueError,
            "[generate] sequence {} has no logits yet: prefill it first", seq);
  return logits_[static_cast<size_t>(seq)];
}

void Session::check_token(int32_t t) const {
  const int64_t V = model_->config().vocab_size;
  LNX_CHECK(t >= 0 && t < V, ValueError, "[generate] token {} is outside the vocabulary [0, {})", t, V);
}

void Session::feed(const std::vector<int64_t>& rows, const std::vector<std::vector<int32_t>>& tokens, core::Mode mode) {
  NoGradGuard no_grad;
  const int64_t N = num_sequences(), B = static_cast<int64_t>(rows.size());
  bool all = B == N;
  for (int64_t j = 0; all && j < B; ++j) all = rows[j] == j;
  LNX_CHECK(all || !state_.empty(), ValueError,
            "[generate] the first prefill must give every one of the {} sequences at least one token", N);
  int64_t T = 0;
  bool ragged = false;
  for (const auto& t : tokens) {
    LNX_CHECK(!t.empty(), ValueError, "[generate] a sequence was given no tokens");
    for (int32_t id : t) check_token(id);
    ragged = ragged || (T != 0 && static_cast<int64_t>(t.size()) != T);
    T = std::max<int64_t>(T, static_cast<int64_t>(t.size()));
  }
  // ids [B, T], right-padded with 0; mask [B, T] (1 = real token) when lengths differ.
  std::vector<int64_t> ids(static_cast<size_t>(B * T), 0);
  std::vector<double> mask(static_cast<size_t>(B * T), 0.0);
  for (int64_t j = 0; j < B; ++j)
    for (size_t t = 0; t < tokens[j].size(); ++t) {
      ids[j * T + static_cast<int64_t>(t)] = tokens[j][t];
      mask[j * T + static_cast<int64_t>(t)] = 1.0;
    }
  // A subset continues from its own rows of the state (compacted batch).
  core::ModelState part;
  const core::ModelState* in = nullptr;
  if (!state_.empty()) {
    if (!all) part = select_rows(*model_, state_, rows);
    in = all ? &state_ : &part;
  }
  models::ForwardOptions options;
  options.mode = mode;
  if (ragged) options.mask = from_vector(mask, {B, T});
  models::ModelOutput out = model_->forward(from_vector(ids, {B, T}), in, options);  // logits [B, T, V]
  for (int64_t j = 0; j < B; ++j) {
    const int64_t last = static_cast<int64_t>(tokens[j].size()) - 1;
    // Cloned so the session does not keep the whole [B, T, V] block alive.
    logits_[static_cast<size_t>(rows[j])] = clone(select(select(out.logits, 0, j), 0, last));  // [V]
    auto& seq = tokens_[static_cast<size_t>(rows[j])];
    seq.insert(seq.end(), tokens[j].begin(), tokens[j].end());
  }
  state_ = all ? std::move(out.state) : scatter_rows(*model_, state_, rows, out.state);
}

Tensor Session::prefill(const std::vector<int32_t>& tokens) {
  LNX_CHECK(num_sequences() == 1, ValueError,
            "[generate] prefill(tokens) is for a one-sequence session; this one has {} (use prefill_batch)",
            num_sequences());
  LNX_CHECK(!tokens.empty(), ValueError, "[generate] the prompt is empty (give at least one token)");
  feed({0}, {tokens}, core::Mode::chunk);
  return logits_[0];
}

Tensor Session::step(int32_t token) {
  LNX_CHECK(num_sequences() == 1, ValueError,
            "[generate] step(token) is for a one-sequence session; this one has {} (use step_batch)", num_sequences());
  LNX_CHECK(!state_.empty(), ValueError, "[generate] step before any prefill: prefill the prompt first");
  feed({0}, {{token}}, core::Mode::recurrent);
  return logits_[0];
}

Tensor Session::prefill_batch(const std::vector<std::vector<int32_t>>& tokens) {
  LNX_CHECK(static_cast<int64_t>(tokens.size()) == num_sequences(), ValueError,
            "[generate] prefill_batch got {} token lists for a session of {} sequences", tokens.size(),
            num_sequences());
  std::vector<int64_t> rows;
  std::vector<std::vector<int32_t>> given;
  for (size_t n = 0; n < tokens.size(); ++n) {
    if (tokens[n].empty()) {
      LNX_CHECK(logits_[n].defined(), ValueError, "[generate] sequence {} has no tokens yet and was given none", n);
      continue;
    }
    rows.push_back(static_cast<int64_t>(n));
    given.push_back(tokens[n]);
  }
  if (!rows.empty()) feed(rows, given, core::Mode::chunk);
  TensorList all;
  for (const Tensor& l : logits_) all.push_back(unsqueeze(l, 0));
  return concat(all, 0);  // [N, V]
}

Tensor Session::step_batch(const std::vector<int32_t>& tokens) {
  LNX_CHECK(static_cast<int64_t>(tokens.size()) == num_sequences(), ValueError,
            "[generate] step_batch got {} tokens for a session of {} sequences", tokens.size(), num_sequences());
  LNX_CHECK(!state_.empty(), ValueError, "[generate] step before any prefill: prefill the prompts first");
  std::vector<int64_t> rows;
  std::vector<std::vector<int32_t>> given;
  for (size_t n = 0; n < tokens.size(); ++n) {
    rows.push_back(static_cast<int64_t>(n));
    given.push_back({tokens[n]});
  }
  feed(rows, given, core::Mode::recurrent);
  TensorList all;
  for (const Tensor& l : logits_) all.push_back(unsqueeze(l, 0));
  return concat(all, 0);  // [N, V]
}

int32_t Session::sample(const SamplingOptions& options, int64_t seq) {
  const Tensor z = logits(seq);  // checks seq
  Sampler& s = samplers_[static_cast<size_t>(seq)];
  if (!s.seeded) {
    s.seed = options.seed + static_cast<uint64_t>(seq);
    s.gen = Generator(s.seed);
    s.draws = 0;
    s.seeded = true;
  }
  const int32_t token = sample_token(z, options, s.gen, tokens_[static_cast<size_t>(seq)]);
  if (options.temperature > 0) ++s.draws;  // sample_token draws exactly once when not greedy
  return token;
}

void Session::reseed(uint64_t seed) {
  for (size_t n = 0; n < samplers_.size(); ++n) {
    samplers_[n].seed = seed + n;
    samplers_[n].gen = Generator(seed + n);
    samplers_[n].draws = 0;
    samplers_[n].seeded = true;
  }
}

std::vector<std::vector<int32_t>> Session::run(const SamplingOptions& options,
                                               const std::function<bool(int64_t, int32_t)>& on_token, bool feed_last) {
  check_options(options);
  const int64_t N = num_sequences();
  for (int64_t n = 0; n < N; ++n) (void)logits(n);  // every sequence must be prefilled
  std::vector<std::vector<int32_t>> produced(static_cast<size_t>(N));
  if (options.max_new_tokens == 0) return produced;
  std::vector<StopStringMatcher> matchers(static_cast<size_t>(N), StopStringMatcher(options));
  std::vector<int64_t> live(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) live[n] = n;
  while (!live.empty()) {
    std::vector<int64_t> still, rows;
    std::vector<std::vector<int32_t>> next;
    for (int64_t n : live) {
      const int32_t token = sample(options, n);
      auto& mine = produced[static_cast<size_t>(n)];
      mine.push_back(token);
      bool done = on_token && !on_token(n, token);
      done =
          std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) != options.stop_tokens.end() || done;
      done = matchers[static_cast<size_t>(n)].push(token) || done;
      done = done || static_cast<int64_t>(mine.size()) >= options.max_new_tokens;
      if (!done) still.push_back(n);
      if (!done || feed_last) {
        rows.push_back(n);
        next.push_back({token});
      }
    }
    // One recurrent step for the sequences still going ([B', 1] ids with their state rows).
    if (!rows.empty()) feed(rows, next, core::Mode::recurrent);
    live = std::move(still);
  }
  return produced;
}

std::vector<int32_t> Session::generate(const SamplingOptions& options, const std::function<bool(int32_t)>& on_token) {
  LNX_CHECK(num_sequences() == 1, ValueError,
            "[generate] generate() is for a one-sequence session; this one has {} (use generate_batch)",
            num_sequences());
  std::function<bool(int64_t, int32_t)> cb;
  if (on_token) cb = [&](int64_t, int32_t t) { return on_token(t); };
  return run(options, cb, true)[0];
}

std::vector<std::vector<int32_t>> Session::generate_batch(const SamplingOptions& options,
                                                          const std::function<bool(int64_t, int32_t)>& on_token) {
  return run(options, on_token, true);
}

Session Session::repeat(int64_t copies) const {
  LNX_CHECK(copies >= 1, ValueError, "[generate] repeat needs at least 1 copy, got {}", copies);
  for (size_t n = 0; n < logits_.size(); ++n)
    LNX_CHECK(logits_[n].defined(), ValueError, "[generate] repeat: sequence {} has no tokens yet", n);
  std::vector<int64_t> rows;
  for (int64_t n = 0; n < num_sequences(); ++n)
    for (int64_t j = 0; j < copies; ++j) rows.push_back(n);
  Session out(*model_, static_cast<int64_t>(rows.size()));
  out.state_ = clone_state(select_rows(*model_, state_, rows));
  for (size_t i = 0; i < rows.size(); ++i) {
    out.tokens_[i] = tokens_[static_cast<size_t>(rows[i])];
    out.logits_[i] = clone(logits_[static_cast<size_t>(rows[i])]);
  }
  return out;
}

Session Session::fork() const {
  Session copy = *this;
  copy.state_ = clone_state(state_);
  for (Tensor& l : copy.logits_)
    if (l.defined()) l = clone(l);
  return copy;
}

}  // namespace lnx::generate
