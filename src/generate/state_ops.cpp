// Row operations on model states (see state_ops.h).
#include "generate/state_ops.h"

#include <algorithm>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::generate {

namespace {

int64_t num_rows(const core::ModelState& s) { return static_cast<int64_t>(s.seen.size()); }

core::ModelState select_one(const models::LMModel& model, const core::ModelState& state, int64_t n) {
  core::ModelState one;
  one.layers.reserve(state.layers.size());
  for (size_t i = 0; i < state.layers.size(); ++i)
    one.layers.push_back(model.block(i).mixer->select_sequence(state.layers[i], n));
  one.seen = {state.seen.at(static_cast<size_t>(n))};
  return one;
}

}  // namespace

core::ModelState select_rows(const models::LMModel& model, const core::ModelState& state,
                             const std::vector<int64_t>& rows) {
  LNX_CHECK(!state.empty() && state.layers.size() == model.num_blocks(), ValueError,
            "[generate] the state has {} layers but the model has {} blocks", state.layers.size(), model.num_blocks());
  std::vector<core::ModelState> parts;
  for (int64_t n : rows) {
    LNX_CHECK(n >= 0 && n < num_rows(state), ValueError, "[generate] sequence {} is out of range [0, {})", n,
              num_rows(state));
    parts.push_back(select_one(model, state, n));
  }
  return stack_states(parts);
}

core::ModelState stack_states(const std::vector<core::ModelState>& parts) {
  LNX_CHECK(!parts.empty(), ValueError, "[generate] stack_states needs at least one state");
  core::ModelState out;
  const size_t L = parts[0].layers.size();
  for (const auto& p : parts) {
    LNX_CHECK(p.layers.size() == L, ValueError, "[generate] states to stack have {} and {} layers", L, p.layers.size());
    out.seen.insert(out.seen.end(), p.seen.begin(), p.seen.end());
  }
  out.layers.resize(L);
  for (size_t i = 0; i < L; ++i) {
    for (const auto& [name, first] : parts[0].layers[i].tensors) {
      // Largest size of every non-leading axis over the parts.
      Shape widest = first.shape();
      for (const auto& p : parts) {
        LNX_CHECK(p.layers[i].has(name), ValueError, "[generate] layer {}: state '{}' is missing in one sequence", i,
                  name);
        const Tensor& t = p.layers[i].tensors.at(name);
        LNX_CHECK(t.dim() == first.dim() && t.dtype() == first.dtype(), ValueError,
                  "[generate] layer {}: state '{}' is {} {} in one sequence and {} {} in another", i, name,
                  dtype_name(first.dtype()), shape_str(first.shape()), dtype_name(t.dtype()), shape_str(t.shape()));
        for (int64_t a = 1; a < t.dim(); ++a) widest[a] = std::max(widest[a], t.size(a));
      }
      TensorList rows;
      for (const auto& p : parts) {
        const Tensor& t = p.layers[i].tensors.at(name);
        bool same = true;
        std::vector<std::pair<int64_t, int64_t>> pads(static_cast<size_t>(t.dim()), {0, 0});
        for (int64_t a = 1; a < t.dim(); ++a) {
          pads[a].second = widest[a] - t.size(a);
          same = same && pads[a].second == 0;
        }
        rows.push_back(same ? t : pad(t, pads));
      }
      out.layers[i].set(name, rows.size() == 1 ? clone(rows[0]) : concat(rows, 0));
    }
    for (const auto& p : parts)
      LNX_CHECK(p.layers[i].tensors.size() == parts[0].layers[i].tensors.size(), ValueError,
                "[generate] layer {}: the sequences' states hold different tensors", i);
  }
  return out;
}

core::ModelState scatter_rows(const models::LMModel& model, const core::ModelState& state,
                              const std::vector<int64_t>& rows, const core::ModelState& part) {
  LNX_CHECK(num_rows(part) == static_cast<int64_t>(rows.size()), ValueError,
            "[generate] {} rows to write back but the state holds {} sequences", rows.size(), num_rows(part));
  std::vector<core::ModelState> singles;
  for (int64_t n = 0; n < num_rows(state); ++n) {
    const auto it = std::find(rows.begin(), rows.end(), n);
    singles.push_back(it == rows.end() ? select_one(model, state, n) : select_one(model, part, it - rows.begin()));
  }
  return stack_states(singles);
}

core::ModelState clone_state(const core::ModelState& state) {
  core::ModelState out;
  out.seen = state.seen;
  for (const auto& layer : state.layers) {
    core::LayerState copy;
    for (const auto& [name, t] : layer.tensors) copy.set(name, clone(t));
    out.layers.push_back(std::move(copy));
  }
  return out;
}

}  // namespace lnx::generate
