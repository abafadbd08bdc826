// safetensors: the tensor file format of Hugging Face, used for every tensor file of the
// project (weights, optimizer state, checkpoints).
//
// Layout: an 8-byte little-endian header length N, then N bytes of UTF-8 JSON mapping each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the byte
// buffer after the header) plus an optional "__metadata__" object of string → string; the
// header may end in spaces. The data regions cover the buffer exactly: no holes, no
// overlaps, no trailing bytes.
//
// Files are untrusted input: every malformed file gives an lnx::IOError naming the file and
// the problem; the reader never reads out of bounds and never allocates more than the file's
// size suggests.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "tensor/tensor_dict.h"

namespace lnx {

struct SafetensorsFile {
  TensorDict tensors;                           // in the order the header lists them
  std::map<std::string, std::string> metadata;  // the "__metadata__" object, if any
};

// Writes tensors (in the dict's order; any layout, written row-major) and metadata to path.
// dtypes f32/f64/i32/i64 are written as F32/F64/I32/I64. The header is padded with spaces so
// the data starts 8-byte aligned. The write is atomic: the bytes go to a temporary file in
// the same directory, which is fsync'ed and then renamed over path, so path holds either the
// old file or the complete new one. Throws IOError (naming the path and the system's reason)
// when the file cannot be written, ValueError for an undefined tensor, the reserved name
// "__metadata__", or names/metadata that are not valid UTF-8.
void save_safetensors(const std::string& path, const TensorDict& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The bytes save_safetensors would write (for sending a TensorDict to another process).
std::string serialize_safetensors(const TensorDict& tensors, const std::map<std::string, std::string>& metadata = {});

// Memory-maps path (private, copy-on-write: tensors may be modified, the file never is).
// F32/F64/I32/I64 tensors whose data is aligned for their dtype are zero-copy views over one
// shared Storage wrapping the mapping, which is unmapped when the last of them is gone;
// misaligned ones are copied. BF16 and F16 are converted to f32. Other dtypes and every
// malformation throw IOError.
SafetensorsFile load_safetensors(const std::string& path);

// Parses a safetensors image held in memory; every tensor is copied out of the buffer, so
// the buffer may be freed afterwards. Errors name the file as "<buffer>".
SafetensorsFile parse_safetensors(const void* data, size_t size);

}  // namespace lnx
