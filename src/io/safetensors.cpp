#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include "io/atomic_file.h"

namespace lnx {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors is little-endian; this reader assumes a little-endian host");

using json = nlohmann::json;

// Limits that keep a hostile file from making us allocate or work without bound.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // as the reference implementation
constexpr int kMaxJsonDepth = 4;                   // {name: {"shape": [dim]}} needs 3 levels
constexpr size_t kMaxDims = 1024;

constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kBufferName = "<buffer>";

std::string errno_text(int err) { return std::system_category().message(err); }

template <typename... Args>
[[noreturn]] void fail(const std::string& file, fmt::format_string<Args...> f, Args&&... args) {
  throw IOError(fmt::format("[safetensors] {}: {}", file, fmt::format(f, std::forward<Args>(args)...)));
}

// ---- dtypes as stored in files ----

enum class FileDType { f32, f64, i32, i64, bf16, f16 };

size_t file_dtype_size(FileDType d) {
  switch (d) {
    case FileDType::f32:
    case FileDType::i32:
      return 4;
    case FileDType::f64:
    case FileDType::i64:
      return 8;
    case FileDType::bf16:
    case FileDType::f16:
      return 2;
  }
  return 1;
}

// The dtype the tensor has once loaded.
DType loaded_dtype(FileDType d) {
  switch (d) {
    case FileDType::f64:
      return DType::f64;
    case FileDType::i32:
      return DType::i32;
    case FileDType::i64:
      return DType::i64;
    default:
      return DType::f32;
  }
}

bool is_native(FileDType d) { return d != FileDType::bf16 && d != FileDType::f16; }

const char* file_dtype_name(DType d) {
  switch (d) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
  }
  return "?";
}

FileDType parse_dtype(const std::string& file, const std::string& tensor, const std::string& s) {
  if (s == "F32") return FileDType::f32;
  if (s == "F64") return FileDType::f64;
  if (s == "I32") return FileDType::i32;
  if (s == "I64") return FileDType::i64;
  if (s == "BF16") return FileDType::bf16;
  if (s == "F16") return FileDType::f16;
  static const char* const kKnown[] = {"BOOL", "U8", "I8",      "U16",     "I16",     "U32",     "U64",
                                       "C64",  "F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0"};
  for (const char* k : kKnown)
    if (s == k)
      fail(file,
           "tensor '{}' has dtype {}, which is not supported (supported dtypes: F32, F64, "
           "I32, I64, BF16, F16)",
           tensor, s);
  fail(file, "tensor '{}' has unknown dtype '{}'", tensor, s);
}

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f)  // inf (mant 0) or nan (payload kept)
    return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp != 0)  // normal: rebias the exponent from 15 to 127
    return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
  // zero or subnormal: mant · 2^-24, exact in f32
  const float v = static_cast<float>(mant) * 0x1p-24f;
  return sign ? -v : v;
}

// ---- header ----

struct Entry {
  std::string name;
  FileDType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // in the data buffer
};

struct Header {
  std::vector<Entry> entries;  // header order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // offset of the data buffer in the file
};

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Parses the JSON text, rejecting duplicate keys (at any level) and deep nesting; returns the
// document and its top-level keys in order.
json parse_json(const std::string& file, const char* text, size_t n, std::vector<std::string>& top_keys) {
  std::vector<std::unordered_set<std::string>> open_objects;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth) fail(file, "header JSON is nested too deeply");
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (open_objects.empty() || !open_objects.back().insert(key).second)
          fail(file, "header has a duplicate key '{}'", key);
        if (depth == 1) top_keys.push_back(key);
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text, text + n, callback);
  } catch (const json::exception& e) {
    fail(file, "header is not valid JSON: {}", e.what());
  }
}

Shape parse_shape(const std::string& file, const std::string& name, const json& j, uint64_t& numel) {
  if (!j.is_array()) fail(file, "tensor '{}': shape must be an array of integers", name);
  if (j.size() > kMaxDims) fail(file, "tensor '{}': shape has {} dims, more than {}", name, j.size(), kMaxDims);
  Shape shape;
  shape.reserve(j.size());
  // Product of the nonzero dims must fit int64 (strides are computed from it); numel is 0 if
  // any dim is 0.
  uint64_t extent = 1;
  bool any_zero = false;
  for (const json& d : j) {
    if (d.is_number_unsigned()) {
      const uint64_t v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(file, "tensor '{}': shape dim {} is too large (overflow)", name, v);
      if (v == 0)
        any_zero = true;
      else if (__builtin_mul_overflow(extent, v, &extent) ||
               extent > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(file, "tensor '{}': shape {} overflows the element count", name, j.dump());
      shape.push_back(static_cast<int64_t>(v));
    } else if (d.is_number_integer()) {
      fail(file, "tensor '{}': shape has a negative dim {}", name, d.get<int64_t>());
    } else if (d.is_number()) {
      fail(file, "tensor '{}': shape has a non-integer dim {}", name, d.dump());
    } else {
      fail(file, "tensor '{}': shape must be an array of integers, has {}", name, d.dump());
    }
  }
  numel = any_zero ? 0 : extent;
  return shape;
}

Header parse_header(const std::string& file, const uint8_t* base, size_t size) {
  if (size < 8) fail(file, "file is {} bytes, shorter than the 8-byte header length", size);
  const uint64_t n = read_u64_le(base);
  if (n > kMaxHeaderBytes) fail(file, "header length {} exceeds the limit of {} bytes", n, kMaxHeaderBytes);
  if (n > size - 8) fail(file, "header length {} is larger than the {} bytes that follow it", n, size - 8);
  const char* text = reinterpret_cast<const char*>(base + 8);
  if (n == 0 || text[0] != '{') fail(file, "header must be a JSON object starting with '{{'");
  if (std::memchr(text, '\0', n) != nullptr) fail(file, "header is not valid JSON: it contains a NUL byte");

  std::vector<std::string> top_keys;
  const json doc = parse_json(file, text, n, top_keys);
  if (!doc.is_object()) fail(file, "header must be a JSON object");

  Header h;
  h.data_start = 8 + n;
  const uint64_t buffer = size - h.data_start;
  for (const std::string& name : top_keys) {
    const json& v = doc.at(name);
    if (name == kMetadataKey) {
      if (!v.is_object()) fail(file, "__metadata__ must be an object of strings");
      for (const auto& [k, mv] : v.items()) {
        if (!mv.is_string()) fail(file, "__metadata__ value of '{}' must be a string, is {}", k, mv.type_name());
        h.metadata.emplace(k, mv.get<std::string>());
      }
      continue;
    }
    if (!v.is_object()) fail(file, "tensor '{}': entry must be an object with dtype, shape and data_offsets", name);
    const auto dt = v.find("dtype");
    const auto sh = v.find("shape");
    const auto off = v.find("data_offsets");
    if (dt == v.end()) fail(file, "tensor '{}': missing dtype", name);
    if (sh == v.end()) fail(file, "tensor '{}': missing shape", name);
    if (off == v.end()) fail(file, "tensor '{}': missing data_offsets", name);
    if (!dt->is_string()) fail(file, "tensor '{}': dtype must be a string", name);

    Entry e;
    e.name = name;
    e.dtype = parse_dtype(file, name, dt->get<std::string>());
    uint64_t numel = 0;
    e.shape = parse_shape(file, name, *sh, numel);

    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
      fail(file, "tensor '{}': data_offsets must be [begin, end] with non-negative integers", name);
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end) fail(file, "tensor '{}': data_offsets begin {} is after end {}", name, e.begin, e.end);
    if (e.end > buffer)
      fail(file, "tensor '{}': data_offsets end {} is beyond the data buffer of {} bytes", name, e.end, buffer);
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, file_dtype_size(e.dtype), &nbytes) || nbytes != e.end - e.begin)
      fail(file,
           "tensor '{}': size mismatch: shape {} of {} needs {} elements but data_offsets "
           "[{}, {}] hold {} bytes",
           name, shape_str(e.shape), dt->get<std::string>(), numel, e.begin, e.end, e.end - e.begin);
    h.entries.push_back(std::move(e));
  }

  // The regions must tile the buffer: sorted by offsets, each starts where the last ended.
  std::vector<size_t> order(h.entries.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Entry& x = h.entries[a];
    const Entry& y = h.entries[b];
    return std::tie(x.begin, x.end, a) < std::tie(y.begin, y.end, b);
  });
  uint64_t expect = 0;
  const Entry* prev = nullptr;
  for (size_t i : order) {
    const Entry& e = h.entries[i];
    if (e.begin < expect)
      fail(file, "tensor '{}' (bytes [{}, {})) overlaps tensor '{}' (bytes [{}, {}))", e.name, e.begin, e.end,
           prev->name, prev->begin, prev->end);
    if (e.begin > expect) fail(file, "data buffer has a hole: bytes [{}, {}) belong to no tensor", expect, e.begin);
    expect = e.end;
    prev = &e;
  }
  if (expect != buffer) fail(file, "data buffer has {} trailing bytes not covered by any tensor", buffer - expect);
  return h;
}

// ---- building tensors ----

// Copies (and for BF16/F16 converts) one tensor out of the file image.
Tensor copy_tensor(const Entry& e, const uint8_t* data) {
  Tensor t = Tensor::empty(e.shape, loaded_dtype(e.dtype));
  const int64_t n = t.numel();
  if (n == 0) return t;
  if (is_native(e.dtype)) {
    std::memcpy(t.raw_data(), data, static_cast<size_t>(e.end - e.begin));
    return t;
  }
  float* out = t.data<float>();
  const bool bf16 = e.dtype == FileDType::bf16;
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, data + 2 * i, 2);
    out[i] = bf16 ? bf16_to_f32(h) : f16_to_f32(h);
  }
  return t;
}

// Builds the tensors; with a mapping (whose data() is base) aligned native tensors view it.
SafetensorsFile build(const Header& h, const uint8_t* base, const std::shared_ptr<Storage>& mapping) {
  SafetensorsFile out;
  out.metadata = h.metadata;
  for (const Entry& e : h.entries) {
    const uint64_t pos = h.data_start + e.begin;  // from the start of the file
    const size_t esize = file_dtype_size(e.dtype);
    if (mapping && is_native(e.dtype) && e.end > e.begin && pos % esize == 0) {
      auto impl = std::make_shared<TensorImpl>();
      impl->storage = mapping;
      impl->shape = e.shape;
      impl->strides = contiguous_strides(e.shape);
      impl->offset = static_cast<int64_t>(pos / esize);
      impl->dtype = loaded_dtype(e.dtype);
      out.tensors.insert(e.name, Tensor(std::move(impl)));
    } else {
      out.tensors.insert(e.name, copy_tensor(e, base + pos));
    }
  }
  return out;
}

// ---- writing ----

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

namespace {

// A safetensors image before it is written: the padded header and the tensors' contiguous data.
struct Image {
  std::string header;
  std::vector<Tensor> data;
  void write(const std::function<void(const void*, size_t)>& out) const {
    uint8_t len[8];
    const uint64_t n = header.size();
    std::memcpy(len, &n, 8);
    out(len, 8);
    out(header.data(), header.size());
    for (const Tensor& t : data)
      if (t.nbytes() > 0) out(t.raw_data(), t.nbytes());
  }
};

Image make_image(const std::string& path, const TensorDict& tensors,
                 const std::map<std::string, std::string>& metadata) {
  Image image;
  std::vector<Tensor>& data = image.data;
  data.reserve(tensors.size());
  std::string& header = image.header;
  header.push_back('{');  // not `= "{"`: GCC 12 warns falsely (-Wrestrict) on that assignment once inlined
  bool first = true;
  auto add_key = [&](const std::string& key, const json& value) {
    if (!first) header += ',';
    first = false;
    try {
      header += json(key).dump();
      header += ':';
      header += value.dump();
    } catch (const json::exception& e) {
      throw ValueError(fmt::format("[save_safetensors] '{}': name or metadata is not valid UTF-8: {}", path, e.what()));
    }
  };
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    add_key(kMetadataKey, m);
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    LNX_CHECK(t.defined(), ValueError, "[save_safetensors] '{}': tensor '{}' is undefined", path, name);
    LNX_CHECK(name != kMetadataKey, ValueError, "[save_safetensors] '{}': '{}' is reserved and cannot name a tensor",
              path, name);
    Tensor c = t.detach().contiguous();
    const uint64_t nbytes = c.nbytes();
    json entry = json::object();
    entry["dtype"] = file_dtype_name(c.dtype());
    entry["shape"] = c.shape();
    entry["data_offsets"] = {offset, offset + nbytes};
    add_key(name, entry);
    offset += nbytes;
    data.push_back(std::move(c));
  }
  header += '}';
  header.append((8 - (8 + header.size()) % 8) % 8, ' ');
  LNX_CHECK(header.size() <= kMaxHeaderBytes, ValueError,
            "[save_safetensors] '{}': header would be {} bytes, over the {} byte limit", path, header.size(),
            kMaxHeaderBytes);
  return image;
}

}  // namespace

void save_safetensors(const std::string& path, const TensorDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Header first (in memory), so bad input fails before any file is touched.
  const Image image = make_image(path, tensors, metadata);
  io::write_file_atomic("safetensors", path, [&](io::AtomicFileSink& out) {
    image.write([&](const void* p, size_t n) { out.write(p, n); });
  });
}

std::string serialize_safetensors(const TensorDict& tensors, const std::map<std::string, std::string>& metadata) {
  const Image image = make_image(kBufferName, tensors, metadata);
  std::string bytes;
  image.write([&](const void* p, size_t n) { bytes.append(static_cast<const char*>(p), n); });
  return bytes;
}

SafetensorsFile parse_safetensors(const void* data, size_t size) {
  if (data == nullptr && size > 0) fail(kBufferName, "null data pointer");
  const auto* base = static_cast<const uint8_t*>(data);
  const Header h = parse_header(kBufferName, base, size);
  return build(h, base, nullptr);
}

SafetensorsFile load_safetensors(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block the open
  if (f.fd < 0) fail(path, "cannot open: {}", errno_text(errno));
  struct stat st;
  if (::fstat(f.fd, &st) != 0) fail(path, "cannot stat: {}", errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) fail(path, "file is {} bytes, shorter than the 8-byte header length", size);

  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, f.fd, 0);
  if (p == MAP_FAILED) fail(path, "cannot map: {}", errno_text(errno));
  std::shared_ptr<Storage> mapping;
  try {
    mapping = std::make_shared<Storage>(p, size, [p, size] { ::munmap(p, size); });
  } catch (...) {
    ::munmap(p, size);
    throw;
  }
  const auto* base = static_cast<const uint8_t*>(p);
  const Header h = parse_header(path, base, size);
  return build(h, base, mapping);  // the mapping is unmapped here if no tensor views it
}

}  // namespace lnx
