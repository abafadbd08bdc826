// Learning-rate schedules (conventions in schedule.h).
#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tensor/error.h"

namespace lnx::train {

void validate(const ScheduleConfig& s) {
  LNX_CHECK(s.kind == "cosine" || s.kind == "linear" || s.kind == "constant", ValueError,
            "[schedule] kind must be cosine, linear or constant, got '{}'", s.kind);
  LNX_CHECK(s.warmup_steps >= 0, ValueError, "[schedule] warmup_steps must be ≥ 0, got {}", s.warmup_steps);
  LNX_CHECK(s.total_steps >= 0, ValueError, "[schedule] total_steps must be ≥ 0, got {}", s.total_steps);
  LNX_CHECK(s.min_ratio >= 0.0 && s.min_ratio <= 1.0, ValueError, "[schedule] min_ratio must be in [0, 1], got {}",
            s.min_ratio);
}

double lr_scale(const ScheduleConfig& s, int64_t step) {
  validate(s);
  LNX_CHECK(step >= 0, ValueError, "[schedule] step must be ≥ 0, got {}", step);
  if (step < s.warmup_steps) return static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
  if (s.kind == "constant") return 1.0;
  if (step >= s.total_steps) return s.min_ratio;
  const double progress =
      static_cast<double>(step - s.warmup_steps) / static_cast<double>(s.total_steps - s.warmup_steps);
  const double shape = s.kind == "cosine" ? 0.5 * (1.0 + std::cos(std::numbers::pi * progress)) : 1.0 - progress;
  return s.min_ratio + (1.0 - s.min_ratio) * shape;
}

}  // namespace lnx::train
