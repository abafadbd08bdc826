// Internal to kda: its chunk primitive (chunk.cpp), the delta family's WY driver with a gate
// per key dimension.
#pragma once

#include "kernels/common/delta_family/delta_family_internal.h"

namespace lnx::kernels::kda_detail {

const Primitive& chunk_primitive();

}  // namespace lnx::kernels::kda_detail
