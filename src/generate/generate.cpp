// The free generation functions: a Session run once and discarded (see session.h).
#include "generate/generate.h"

#include "generate/session.h"
#include "tensor/error.h"

namespace lnx::generate {

std::vector<int32_t> generate(const models::LMModel& model, const std::vector<int32_t>& prompt,
                              const SamplingOptions& options, const std::function<bool(int32_t)>& on_token) {
  LNX_CHECK(!prompt.empty(), ValueError, "[generate] the prompt is empty (give at least one token)");
  check_options(options);
  Session session(model, 1);
  session.prefill(prompt);
  std::function<bool(int64_t, int32_t)> cb;
  if (on_token) cb = [&](int64_t, int32_t t) { return on_token(t); };
  // The session is discarded: the last token need not be fed.
  return session.run(options, cb, /*feed_last=*/false)[0];
}

std::vector<std::vector<int32_t>> generate_batch(const models::LMModel& model,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 const SamplingOptions& options,
                                                 const std::function<bool(int64_t, int32_t)>& on_token) {
  LNX_CHECK(!prompts.empty(), ValueError, "[generate] generate_batch got no prompts");
  for (size_t i = 0; i < prompts.size(); ++i)
    LNX_CHECK(!prompts[i].empty(), ValueError, "[generate] prompt {} is empty (give at least one token)", i);
  check_options(options);
  Session session(model, static_cast<int64_t>(prompts.size()));
  session.prefill_batch(prompts);
  return session.run(options, on_token, /*feed_last=*/false);
}

std::vector<std::vector<std::vector<int32_t>>> generate_groups(const models::LMModel& model,
                                                               const std::vector<std::vector<int32_t>>& prompts,
                                                               int64_t group, const SamplingOptions& options,
                                                               bool fork_prompt) {
  LNX_CHECK(!prompts.empty(), ValueError, "[generate] generate_groups got no prompts");
  LNX_CHECK(group >= 1, ValueError, "[generate] generate_groups: group = {}, expected >= 1", group);
  for (size_t i = 0; i < prompts.size(); ++i)
    LNX_CHECK(!prompts[i].empty(), ValueError, "[generate] prompt {} is empty (give at least one token)", i);
  check_options(options);
  const int64_t P = static_cast<int64_t>(prompts.size());
  std::vector<std::vector<int32_t>> samples;
  if (fork_prompt) {
    Session prefilled(model, P);
    prefilled.prefill_batch(prompts);
    Session all = prefilled.repeat(group);
    samples = all.run(options, {}, /*feed_last=*/false);
  } else {
    std::vector<std::vector<int32_t>> each;
    for (const auto& p : prompts)
      for (int64_t j = 0; j < group; ++j) each.push_back(p);
    Session all(model, P * group);
    all.prefill_batch(each);
    samples = all.run(options, {}, /*feed_last=*/false);
  }
  std::vector<std::vector<std::vector<int32_t>>> out(static_cast<size_t>(P));
  for (int64_t p = 0; p < P; ++p)
    for (int64_t j = 0; j < group; ++j) out[p].push_back(std::move(samples[static_cast<size_t>(p * group + j)]));
  return out;
}

}  // namespace lnx::generate
