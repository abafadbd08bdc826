// What the CPU can run (cpuid), read once.
#pragma once

namespace lnx {

struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_bf16 = false;
};
const CpuFeatures& cpu_features();

}  // namespace lnx
