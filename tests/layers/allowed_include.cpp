// Control for upward_include.cpp: the same kernels include view finds the headers of the
// layers below kernels (tensor, core), and this probe builds.
#include "core/varlen.h"
#include "tensor/ops.h"

int lnx_layers_probe() { return static_cast<int>(lnx::zeros({2, 3}).numel()); }
