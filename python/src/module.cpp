// linearnexus._core: the extension module. The library's typed errors become Python
// exceptions carrying the C++ message, subclasses of linearnexus.Error and of the builtin a
// Python user expects (ShapeError and ValueError are ValueErrors, DTypeError a TypeError,
// IOError an OSError).
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

namespace {

// One Python class per error type, deriving from linearnexus.Error and from the builtin a
// Python user expects to catch (so `except ValueError` and `except lnx.Error` both work).
PyObject* error_class(nb::module_& m, const char* name, PyObject* error, PyObject* builtin) {
  nb::object bases =
      error ? nb::make_tuple(nb::handle(error), nb::handle(builtin)) : nb::make_tuple(nb::handle(builtin));
  PyObject* type = PyErr_NewException(fmt::format("linearnexus._core.{}", name).c_str(), bases.ptr(), nullptr);
  if (!type) throw nb::python_error();
  m.attr(name) = nb::handle(type);  // the module keeps the reference
  Py_DECREF(type);
  return type;
}

}  // namespace

void bind_errors(nb::module_& m) {
  static PyObject* error = error_class(m, "Error", nullptr, PyExc_RuntimeError);
  static PyObject* shape_error = error_class(m, "ShapeError", error, PyExc_ValueError);
  static PyObject* dtype_error = error_class(m, "DTypeError", error, PyExc_TypeError);
  static PyObject* value_error = error_class(m, "ValueError", error, PyExc_ValueError);
  static PyObject* io_error = error_class(m, "IOError", error, PyExc_OSError);
  static PyObject* autograd_error = error_class(m, "AutogradError", error, PyExc_RuntimeError);
  static PyObject* distributed_error = error_class(m, "DistributedError", error, PyExc_RuntimeError);
  // The most derived C++ type first; anything that is not a library error goes on to
  // nanobind's own translation.
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const ShapeError& e) {
      PyErr_SetString(shape_error, e.what());
    } catch (const DTypeError& e) {
      PyErr_SetString(dtype_error, e.what());
    } catch (const ValueError& e) {
      PyErr_SetString(value_error, e.what());
    } catch (const IOError& e) {
      PyErr_SetString(io_error, e.what());
    } catch (const AutogradError& e) {
      PyErr_SetString(autograd_error, e.what());
    } catch (const DistributedError& e) {
      PyErr_SetString(distributed_error, e.what());
    } catch (const Error& e) {
      PyErr_SetString(error, e.what());
    }
  });
}

}  // namespace lnx::python

NB_MODULE(_core, m) {
  namespace nb = nanobind;
  m.doc() = "LinearNexus C++ core (see the linearnexus package for the Python API)";
  lnx::python::bind_errors(m);
  lnx::python::bind_tensors(m);
  lnx::python::bind_ops(m);
  lnx::python::bind_models(m);
}
