// The parts of linearnexus._core, each bound by its own file.
#pragma once

#include <nanobind/nanobind.h>

namespace lnx::python {

namespace nb = nanobind;

void bind_ops(nb::module_& m);      // ops.cpp: mechanisms
void bind_errors(nb::module_& m);   // module.cpp: the library's errors as Python exceptions
void bind_tensors(nb::module_& m);  // module.cpp: safetensors files, threads
void bind_models(nb::module_& m);   // models.cpp: models, generation, sessions, training

}  // namespace lnx::python
