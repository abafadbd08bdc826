// Internal to the toy mechanism: its primitives.
#pragma once

#include <memory>
#include <vector>

#include "kernels/primitive.h"

namespace lnx::toy {

std::vector<kernels::InputSpec> fixed_decay_inputs();
std::shared_ptr<const kernels::Primitive> fixed_decay_recurrent();
std::shared_ptr<const kernels::Primitive> fixed_decay_chunk();

}  // namespace lnx::toy
