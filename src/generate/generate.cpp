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

}  // namespace lnx::generate
