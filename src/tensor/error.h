// Typed exceptions of the library. Every message names the op and what was expected versus
// what was given, e.g. "[matmul] a is [2,3] but b is [4,5]: inner dims must match".
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace lnx {

// Base of every error the library raises on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ShapeError : public Error {
  using Error::Error;
};  // shapes or axes do not fit
class DTypeError : public Error {
  using Error::Error;
};  // dtype not accepted by an op
class ValueError : public Error {
  using Error::Error;
};  // bad argument value
class IOError : public Error {
  using Error::Error;
};  // files: missing, malformed, unwritable
class AutogradError : public Error {
  using Error::Error;
};  // misuse of the autodiff machinery
class DistributedError : public Error {
  using Error::Error;
};  // a collective across ranks failed or timed out (another rank died, hangs or disagrees)

}  // namespace lnx

// LNX_CHECK(cond, ErrorType, "[op] format {}", args...) throws ErrorType when cond is false.
#define LNX_CHECK(cond, ErrorType, ...)                     \
  do {                                                      \
    if (!(cond)) throw ErrorType(fmt::format(__VA_ARGS__)); \
  } while (0)
