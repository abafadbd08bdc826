// linearnexus._core: the extension module. The library's typed errors become Python
// exceptions carrying the C++ message (ShapeError and ValueError are ValueErrors, DTypeError a
// TypeError, IOError an OSError), so `except ValueError` works as a Python user expects.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>

#include "arrays.h"
#include "bindings.h"
#include "io/safetensors.h"
#include "tensor/cpu/parallel.h"
#include "tensor/error.h"

namespace lnx::python {

void bind_tensors(nb::module_& m) {
  m.def(
      "load_safetensors",
      [](const std::filesystem::path& path) {
        SafetensorsFile file = load_safetensors(path.string());
        nb::dict tensors;
        for (const auto& [name, t] : file.tensors) tensors[name.c_str()] = array_from_tensor(t);
        return nb::make_tuple(tensors, file.metadata);
      },
      nb::arg("path"), "(tensors, metadata) of a safetensors file; arrays share the file's mapping");
  m.def(
      "save_safetensors",
      [](const std::filesystem::path& path, const nb::dict& tensors,
         const std::map<std::string, std::string>& metadata) {
        TensorDict dict;
        for (auto [key, value] : tensors) {
          const std::string name = nb::cast<std::string>(key);
          dict.insert(name,
                      tensor_from_array(array_argument(value, name, "save_safetensors"), name, "save_safetensors"));
        }
        nb::gil_scoped_release release;
        save_safetensors(path.string(), dict, metadata);
      },
      nb::arg("path"), nb::arg("tensors"), nb::arg("metadata") = std::map<std::string, std::string>(),
      "Writes arrays (float32, float64, int32, int64) to a safetensors file, atomically");
  m.def(
      "_data_address",
      [](const AnyArray& array) {
        return reinterpret_cast<uintptr_t>(tensor_from_array(array, "array", "_data_address").raw_data());
      },
      nb::arg("array"), "Where the Tensor made from array reads its data (tests: no copy was made)");
  m.def("num_threads", &num_threads, "Threads the kernels run on");
  m.def("set_num_threads", &set_num_threads, nb::arg("n"), "Sets the threads the kernels run on");
}

}  // namespace lnx::python

NB_MODULE(_core, m) {
  namespace nb = nanobind;
  m.doc() = "LinearNexus C++ core (see the linearnexus package for the Python API)";
  // Registered base first: nanobind tries the translators registered last first, so each
  // error lands on its own Python class before the catch-all.
  nb::exception<lnx::Error>(m, "Error", PyExc_RuntimeError);
  nb::exception<lnx::AutogradError>(m, "AutogradError", PyExc_RuntimeError);
  nb::exception<lnx::DistributedError>(m, "DistributedError", PyExc_RuntimeError);
  nb::exception<lnx::IOError>(m, "IOError", PyExc_OSError);
  nb::exception<lnx::ValueError>(m, "ValueError", PyExc_ValueError);
  nb::exception<lnx::ShapeError>(m, "ShapeError", PyExc_ValueError);
  nb::exception<lnx::DTypeError>(m, "DTypeError", PyExc_TypeError);
  lnx::python::bind_tensors(m);
  lnx::python::bind_ops(m);
  lnx::python::bind_models(m);
}
