// Learning-rate schedules: a factor in [0, 1] that multiplies the optimizer's lr, as a
// function of the 0-based optimizer step.
//
// Convention (W = warmup_steps, N = total_steps, r = min_ratio):
//   step < W:          (step + 1) / W — linear warmup from 1/W at step 0 to 1 at step W − 1,
//                      so the very first update is small but not zero (nanoGPT's convention);
//   W ≤ step < N:      decay from 1 (at step W) towards r, with progress p = (step − W)/(N − W):
//                        cosine   r + (1 − r) · (1 + cos(π p)) / 2
//                        linear   r + (1 − r) · (1 − p)
//                        constant 1
//   step ≥ N:          r (cosine, linear), 1 (constant).
// W = 0 means no warmup; N ≤ W means the decay phase is empty (r right after the warmup).
#pragma once

#include <cstdint>
#include <string>

namespace lnx::train {

struct ScheduleConfig {
  std::string kind = "cosine";  // cosine | linear | constant
  int64_t warmup_steps = 100;
  int64_t total_steps = 1000;
  double min_ratio = 0.1;  // the factor at and after total_steps

  template <class Visitor> void visit(Visitor&& v) {
    v("kind", kind, "lr schedule after warmup: cosine, linear or constant");
    v("warmup_steps", warmup_steps, "steps of linear warmup (0 = none)");
    v("total_steps", total_steps, "step at which the decay reaches min_ratio");
    v("min_ratio", min_ratio, "final lr as a fraction of the peak lr");
  }
};

// Checks the config (ValueError naming the field).
void validate(const ScheduleConfig& s);
// The lr factor at a 0-based step (≥ 0; ValueError otherwise, or for a bad config).
double lr_scale(const ScheduleConfig& s, int64_t step);

}  // namespace lnx::train
