#include "train/policy.h"

#include <algorithm>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::train {

CompletionLogprobs completion_logprobs(const models::LMModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                       const std::vector<std::vector<int32_t>>& completions,
                                       const modules::Linear* value_head, double temperature) {
  LNX_CHECK(!prompts.empty() && prompts.size() == completions.size(), ValueError,
            "[policy] {} prompts and {} completions", prompts.size(), completions.size());
  LNX_CHECK(temperature > 0, ValueError, "[policy] temperature must be > 0, got {}", temperature);
  const int64_t N = static_cast<int64_t>(prompts.size()), V = model.config().vocab_size;
  int64_t T = 0;
  for (const auto& c : completions) T = std::max<int64_t>(T, static_cast<int64_t>(c.size()));
  // Packed sequences: prompt then completion; the logits at position p predict token p + 1.
  std::vector<int64_t> ids, cu{0}, rows, tokens;
  std::vector<int64_t> slot(static_cast<size_t>(N * T), -1);  // [N, T] → row of `rows`, −1 = padding
  for (int64_t n = 0; n < N; ++n) {
    const auto& p = prompts[static_cast<size_t>(n)];
    const auto& c = completions[static_cast<size_t>(n)];
    LNX_CHECK(!p.empty(), ValueError, "[policy] prompt {} is empty", n);
    const int64_t start = static_cast<int64_t>(ids.size());
    for (const auto* part : {&p, &c})
      for (int32_t t : *part) {
        LNX_CHECK(t >= 0 && t < V, ValueError, "[policy] token {} of sequence {} is outside the vocabulary of {}", t, n,
                  V);
        ids.push_back(t);
      }
    cu.push_back(static_cast<int64_t>(ids.size()));
    for (size_t j = 0; j < c.size(); ++j) {
      slot[static_cast<size_t>(n * T) + j] = static_cast<int64_t>(rows.size());
      rows.push_back(start + static_cast<int64_t>(p.size() + j) - 1);
      tokens.push_back(c[j]);
    }
  }
  CompletionLogprobs out;
  std::vector<double> mask(slot.size());
  for (size_t i = 0; i < slot.size(); ++i) mask[i] = slot[i] >= 0 ? 1.0 : 0.0;
  out.mask = to_dtype(from_vector(mask, {N, T}), model.dtype());
  if (value_head)
    LNX_CHECK(value_head->in_features() == model.config().d_model && value_head->out_features() == 1, ShapeError,
              "[policy] the value head maps {} → {}, expected {} → 1", value_head->in_features(),
              value_head->out_features(), model.config().d_model);
  if (rows.empty()) {
    out.logp = zeros({N, T}, model.dtype());
    if (value_head) out.values = zeros({N, T}, model.dtype());
    return out;
  }
  const int64_t P = static_cast<int64_t>(ids.size()), M = static_cast<int64_t>(rows.size());
  models::ForwardOptions fwd;
  fwd.mode = core::Mode::chunk;
  fwd.cu_seqlens = from_vector(cu, {N + 1});
  fwd.return_hidden = value_head != nullptr;
  const models::ModelOutput o = model.forward(from_vector(ids, {1, P}), nullptr, fwd);  // logits [1, P, V]
  const Tensor picked_rows = from_vector(rows, {M});
  Tensor picked = index_select(reshape(o.logits, {P, V}), 0, picked_rows);  // [M, V]
  if (temperature != 1.0) picked = div(picked, temperature);
  const Tensor lp = gather(log_softmax(picked, -1), 1, from_vector(tokens, {M, 1}));  // [M, 1]
  // Into [N, T]: padding reads an appended zero.
  for (auto& s : slot)
    if (s < 0) s = M;
  const Tensor slots = from_vector(slot, {N * T});
  auto to_nt = [&](const Tensor& per_row) {                                   // [M] → [N, T]
    const Tensor padded = concat({per_row, zeros({1}, per_row.dtype())}, 0);  // [M + 1]
    return reshape(index_select(padded, 0, slots), {N, T});
  };
  out.logp = to_nt(reshape(lp, {M}));
  if (value_head) {
    const int64_t D = model.config().d_model;
    const Tensor h = index_select(reshape(o.hidden, {P, D}), 0, picked_rows);  // [M, D]
    out.values = to_nt(reshape(value_head->forward(h), {M}));
  }
  return out;
}

}  // namespace lnx::train
