// Internals shared by the optimizers (not part of the public API): the tracked-parameter
// record, the state-dict reader that collects every problem before loading, the AdamW core
// that Muon reuses for its non-matrix parameters, and the concrete optimizer factories.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "train/optim.h"

namespace lnx::train::detail {

// One parameter an optimizer updates, with its buffers (same shape and dtype, zero at start).
struct Tracked {
  std::string name;
  Tensor param;
  bool decay = false;           // decoupled weight decay applies (matrices only)
  std::vector<Tensor> buffers;  // one per slot name of the optimizer
};

std::vector<Tracked> track(const std::vector<std::pair<std::string, Tensor>>& params, size_t num_buffers);

// A contiguous copy with its own storage and no autodiff history (state() entries).
Tensor detached_copy(const Tensor& t);
Tensor step_counter(int64_t steps);  // i64 [1]
// The parameter's gradient as a contiguous tensor without history; undefined if it has none.
Tensor grad_of(const Tensor& param);

// Reads a state dict in two phases: expect_* record what must be there and collect every
// problem; finish() adds the unexpected keys and throws one ValueError listing them all.
// Only after finish() returned do copy_into / counter change anything, so a bad dict leaves
// the optimizer as it was.
class StateReader {
 public:
  StateReader(const TensorDict& state, std::string component);
  void expect_like(const std::string& key, const Tensor& like);  // same shape and dtype
  void expect_counter(const std::string& key);                   // i64 [1], value ≥ 0
  void finish();
  void copy_into(const std::string& key, const Tensor& dst) const;  // dst contiguous
  int64_t counter(const std::string& key) const;

 private:
  const TensorDict& state_;
  std::string component_;
  std::vector<std::string> expected_;
  std::vector<std::string> problems_;
};

// Saves and checks/loads the buffers of `tracked` under "<prefix><slot>/<name>".
void save_buffers(const std::vector<Tracked>& tracked, const std::vector<std::string>& slots, const std::string& prefix,
                  TensorDict& out);
void expect_buffers(const std::vector<Tracked>& tracked, const std::vector<std::string>& slots,
                    const std::string& prefix, StateReader& reader);
void load_buffers(std::vector<Tracked>& tracked, const std::vector<std::string>& slots, const std::string& prefix,
                  const StateReader& reader);

// The whole state of an optimizer made of a step counter ("step") and per-parameter buffers
// (SGD, Sophia): save, and check-then-load returning the counter.
TensorDict counted_buffers_state(int64_t steps, const std::vector<Tracked>& tracked,
                                 const std::vector<std::string>& slots);
int64_t load_counted_buffers(const TensorDict& state, const std::string& optimizer, std::vector<Tracked>& tracked,
                             const std::vector<std::string>& slots);

// p ← p · (1 − lr · weight_decay) for a decayed parameter (no-op otherwise).
void apply_weight_decay(const Tracked& t, double lr, double weight_decay);

// Elements per thread below which an optimizer's pass over a parameter stays on one thread.
inline constexpr int64_t kOptimizerGrain = 16384;

// The AdamW update over a set of parameters, with its own step counter (bias correction).
class AdamWCore {
 public:
  AdamWCore(const OptimizerConfig& config, std::vector<Tracked> tracked, std::string prefix);
  void step(double lr);
  void save(TensorDict& out) const;
  void expect(StateReader& reader) const;
  void load(const StateReader& reader);
  int64_t steps() const { return steps_; }
  size_t size() const { return tracked_.size(); }

 private:
  OptimizerConfig config_;
  std::vector<Tracked> tracked_;  // buffers: exp_avg, exp_avg_sq
  std::string prefix_;
  int64_t steps_ = 0;
};

std::unique_ptr<Optimizer> make_adamw(const OptimizerConfig& config, const TensorDict& params);
std::unique_ptr<Optimizer> make_muon(const OptimizerConfig& config, const TensorDict& params);
std::unique_ptr<Optimizer> make_sophia(const OptimizerConfig& config, const TensorDict& params);
std::unique_ptr<Optimizer> make_sgd(const OptimizerConfig& config, const TensorDict& params);

}  // namespace lnx::train::detail
