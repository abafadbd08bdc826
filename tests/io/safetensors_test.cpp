// safetensors: round trips of every dtype and layout, zero-copy memory-mapped loading,
// BF16/F16 conversion, atomic writes, a table of malformed files, and a seeded fuzz loop
// (every mutated file either loads or throws IOError).
#include "io/safetensors.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "tensor/ops.h"

namespace lnx {
namespace {

using Bytes = std::vector<uint8_t>;

// A fresh directory under gtest's temp dir, removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "lnx_safetensors_XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    if (!p) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }
  std::set<std::string> entries() const {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) out.insert(e.path().filename().string());
    return out;
  }

 private:
  std::string path_;
};

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void append_u64(Bytes& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A file image: header length, header text (optionally space-padded to 8-byte alignment of
// the data), then the data bytes.
Bytes image(std::string header, const Bytes& data, bool pad = true) {
  if (pad) header.append((8 - (8 + header.size()) % 8) % 8, ' ');
  Bytes b;
  append_u64(b, header.size());
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}
Bytes image(const std::string& header, size_t zero_bytes) { return image(header, Bytes(zero_bytes, 0)); }

template <typename T> void append_values(Bytes& b, std::initializer_list<T> values) {
  for (T v : values) {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &v, sizeof(T));
    b.insert(b.end(), raw, raw + sizeof(T));
  }
}

template <typename F> std::string io_error_of(F&& f) {
  try {
    f();
  } catch (const IOError& e) {
    return e.what();
  }
  return "<no IOError>";
}

void expect_same(const Tensor& got, const Tensor& want, const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_TRUE(got.defined());
  EXPECT_EQ(got.dtype(), want.dtype());
  EXPECT_EQ(got.shape(), want.shape());
  if (got.dtype() != want.dtype() || got.shape() != want.shape()) return;
  dispatch_all(want.dtype(), [&]<typename T>() { EXPECT_EQ(got.to_vector<T>(), want.to_vector<T>()); });
}

// Is the file mapped into this process (a line of /proc/self/maps names it)?
bool is_mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0) return true;
  return false;
}

TensorDict sample_tensors() {
  Generator gen(7);
  TensorDict d;
  d.insert("blocks.0.weight", randn({2, 3}, gen, DType::f32));  // 24 bytes: keeps f64 aligned
  d.insert("blocks.0.bias", randn({4}, gen, DType::f64));
  d.insert("ids", randint({3, 2}, -100, 100, gen, DType::i32));
  d.insert("counts", randint({5}, -1000000, 1000000, gen, DType::i64));
  d.insert("expanded", expand(randn({1, 3}, gen, DType::f64), {2, 3}));
  d.insert("scalar", scalar_tensor(3.25, DType::f32));
  d.insert("empty_rows", Tensor::empty({0, 3}, DType::f32));
  d.insert("empty_i64", Tensor::empty({0}, DType::i64));
  d.insert("transposed", randn({3, 4}, gen, DType::f32).transpose(0, 1));
  return d;
}

// ---- round trips ----

TEST(Safetensors, RoundTripAllDtypesAndLayouts) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  TensorDict d = sample_tensors();
  ASSERT_FALSE(d.at("transposed").is_contiguous());
  std::map<std::string, std::string> meta{{"format", "lnx"}, {"note", "h\xc3\xa9llo \"q\""}};
  save_safetensors(path, d, meta);

  for (int via_buffer = 0; via_buffer < 2; ++via_buffer) {
    SCOPED_TRACE(via_buffer ? "parse_safetensors" : "load_safetensors");
    Bytes bytes = read_bytes(path);
    SafetensorsFile f = via_buffer ? parse_safetensors(bytes.data(), bytes.size()) : load_safetensors(path);
    EXPECT_EQ(f.metadata, meta);
    ASSERT_EQ(f.tensors.size(), d.size());
    size_t i = 0;
    for (const auto& [name, t] : d) {
      EXPECT_EQ(f.tensors.items()[i++].first, name);  // order kept
      expect_same(f.tensors.at(name), t, name);
    }
    EXPECT_EQ(f.tensors.at("scalar").dim(), 0);
    EXPECT_EQ(f.tensors.at("scalar").item(), 3.25);
  }
}

TEST(Safetensors, EmptyDictRoundTrips) {
  TempDir dir;
  const std::string path = dir.file("empty.safetensors");
  save_safetensors(path, TensorDict{});
  SafetensorsFile f = load_safetensors(path);
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_EQ(read_bytes(path).size() % 8, 0u);
}

TEST(Safetensors, HeaderIsPaddedJsonWithDataAligned) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  save_safetensors(path, sample_tensors(), {{"k", "v"}});
  Bytes b = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  std::string header(b.begin() + 8, b.begin() + 8 + static_cast<long>(n));
  EXPECT_EQ(header.front(), '{');
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"]["k"], "v");
  EXPECT_EQ(j["blocks.0.bias"]["dtype"], "F64");
  EXPECT_EQ(j["ids"]["dtype"], "I32");
  EXPECT_EQ(j["counts"]["dtype"], "I64");
  EXPECT_EQ(j["transposed"]["shape"], nlohmann::json({4, 3}));
  EXPECT_EQ(j["scalar"]["shape"], nlohmann::json::array());
  EXPECT_EQ(j["blocks.0.weight"]["data_offsets"], nlohmann::json({0, 24}));
  EXPECT_EQ(j["blocks.0.bias"]["data_offsets"], nlohmann::json({24, 56}));
}

// ---- memory mapping ----

TEST(Safetensors, LoadedTensorsAreViewsOfOneMapping) {
  TempDir dir;
  const std::string path = dir.file("mapped.safetensors");
  TensorDict d = sample_tensors();
  save_safetensors(path, d);
  const size_t file_size = read_bytes(path).size();
  {
    SafetensorsFile f = load_safetensors(path);
    EXPECT_TRUE(is_mapped(path));
    const auto& storage = f.tensors.at("blocks.0.weight").storage();
    EXPECT_EQ(storage->nbytes(), file_size);
    const char* lo = static_cast<const char*>(storage->data());
    for (const auto& [name, t] : f.tensors) {
      if (t.numel() == 0) continue;
      SCOPED_TRACE(name);
      // Every tensor of this file is aligned (the writer puts f32 data of 24 bytes first).
      EXPECT_TRUE(t.shares_storage(f.tensors.at("blocks.0.weight")));
      const char* p = static_cast<const char*>(t.raw_data());
      EXPECT_GE(p, lo);
      EXPECT_LE(p + t.nbytes(), lo + storage->nbytes());
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % dtype_size(t.dtype()), 0u);
    }
    // Keeping one tensor alive keeps the mapping.
    Tensor keep = f.tensors.at("counts");
    f = SafetensorsFile{};
    EXPECT_TRUE(is_mapped(path));
    expect_same(keep, d.at("counts"), "counts");
  }
  EXPECT_FALSE(is_mapped(path));  // unmapped with the last tensor
}

TEST(Safetensors, WritingLoadedTensorsLeavesFileUnchanged) {
  TempDir dir;
  const std::string path = dir.file("cow.safetensors");
  TensorDict d = sample_tensors();
  save_safetensors(path, d);
  const Bytes before = read_bytes(path);
  {
    SafetensorsFile f = load_safetensors(path);
    Tensor w = f.tensors.at("blocks.0.weight");
    w.data<float>()[0] = 42.0f;
    w.set({1, 2}, -7.0);
    f.tensors.at("counts").set({4}, 123.0);
    EXPECT_EQ(w.at({0, 0}), 42.0);
    EXPECT_EQ(read_bytes(path), before);
    // A second load sees the file, not the first load's private writes.
    SafetensorsFile g = load_safetensors(path);
    expect_same(g.tensors.at("blocks.0.weight"), d.at("blocks.0.weight"), "weight");
    expect_same(g.tensors.at("counts"), d.at("counts"), "counts");
  }
  EXPECT_EQ(read_bytes(path), before);
}

TEST(Safetensors, MisalignedTensorsAreCopied) {
  TempDir dir;
  // "a" is one f32 (4 bytes), so "b" (f64) starts at data offset 4: misaligned for f64.
  Bytes data;
  append_values<float>(data, {1.5f});
  append_values<double>(data, {-2.25, 1e300});
  append_values<int32_t>(data, {7});
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F64","shape":[2],"data_offsets":[4,20]},)"
                             R"("c":{"dtype":"I32","shape":[],"data_offsets":[20,24]}})";
  const std::string path = dir.file("misaligned.safetensors");
  write_bytes(path, image(header, data));
  SafetensorsFile f = load_safetensors(path);
  const Tensor& a = f.tensors.at("a");
  const Tensor& b = f.tensors.at("b");
  const Tensor& c = f.tensors.at("c");
  EXPECT_FALSE(b.shares_storage(a));
  EXPECT_TRUE(c.shares_storage(a));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.raw_data()) % 8, 0u);
  EXPECT_EQ(a.to_vector<float>(), std::vector<float>{1.5f});
  EXPECT_EQ(b.to_vector<double>(), (std::vector<double>{-2.25, 1e300}));
  EXPECT_EQ(c.item(), 7.0);

  // An unpadded header puts the data start at an odd address: everything still loads.
  const std::string path2 = dir.file("unpadded.safetensors");
  Bytes odd = image(header + " ", data, /*pad=*/false);
  ASSERT_NE((odd.size() - data.size()) % 4, 0u);
  write_bytes(path2, odd);
  SafetensorsFile g = load_safetensors(path2);
  EXPECT_EQ(g.tensors.at("a").to_vector<float>(), std::vector<float>{1.5f});
  EXPECT_EQ(g.tensors.at("b").to_vector<double>(), (std::vector<double>{-2.25, 1e300}));
  EXPECT_EQ(g.tensors.at("c").item(), 7.0);
  for (const auto& [name, t] : g.tensors)
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % dtype_size(t.dtype()), 0u) << name;
}

TEST(Safetensors, ParseBufferCopiesOutOfTheBuffer) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  TensorDict d = sample_tensors();
  save_safetensors(path, d);
  Bytes b = read_bytes(path);
  SafetensorsFile f = parse_safetensors(b.data(), b.size());
  std::fill(b.begin(), b.end(), 0xAB);
  b.clear();
  b.shrink_to_fit();
  for (const auto& [name, t] : d) expect_same(f.tensors.at(name), t, name);
}

// ---- BF16 / F16 ----

TEST(Safetensors, Bf16AndF16AreConvertedToF32) {
  const float inf = std::numeric_limits<float>::infinity();
  // F16: 1, -2.5, smallest subnormal 2^-24, largest subnormal 1023·2^-24, -0, max 65504,
  // smallest normal 2^-14, inf, -inf, nan.
  const std::vector<uint16_t> f16 = {0x3C00, 0xC100, 0x0001, 0x03FF, 0x8000, 0x7BFF, 0x0400, 0x7C00, 0xFC00, 0x7E00};
  const std::vector<float> f16_want = {1.0f, -2.5f, 0x1p-24f, 1023 * 0x1p-24f, -0.0f, 65504.0f, 0x1p-14f,
                                       inf,  -inf,  NAN};
  // BF16: 1, -2.5, f32-subnormal 2^-133, 3.140625, -0, inf, -inf, nan, -nan.
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC020, 0x0001, 0x4049, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1};
  const std::vector<float> bf16_want = {1.0f, -2.5f, 0x1p-133f, 3.140625f, -0.0f, inf, -inf, NAN, -NAN};
  Bytes data;
  for (uint16_t v : f16) append_values<uint16_t>(data, {v});
  for (uint16_t v : bf16) append_values<uint16_t>(data, {v});
  const std::string header = fmt::format(R"({{"h":{{"dtype":"F16","shape":[2,5],"data_offsets":[0,20]}},)"
                                         R"("b":{{"dtype":"BF16","shape":[9],"data_offsets":[20,38]}}}})");
  Bytes img = image(header, data);

  TempDir dir;
  write_bytes(dir.file("half.safetensors"), img);
  for (int via_buffer = 0; via_buffer < 2; ++via_buffer) {
    SafetensorsFile f =
        via_buffer ? parse_safetensors(img.data(), img.size()) : load_safetensors(dir.file("half.safetensors"));
    auto check = [](const Tensor& t, const std::vector<float>& want, const char* what) {
      SCOPED_TRACE(what);
      ASSERT_EQ(t.dtype(), DType::f32);
      auto got = t.to_vector<float>();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        if (std::isnan(want[i])) {
          EXPECT_TRUE(std::isnan(got[i])) << i;
          EXPECT_EQ(std::signbit(got[i]), std::signbit(want[i])) << i;
        } else {
          EXPECT_EQ(got[i], want[i]) << i;
          EXPECT_EQ(std::signbit(got[i]), std::signbit(want[i])) << i;
        }
      }
    };
    EXPECT_EQ(f.tensors.at("h").shape(), (Shape{2, 5}));
    check(f.tensors.at("h"), f16_want, "F16");
    check(f.tensors.at("b"), bf16_want, "BF16");
  }
}

TEST(Safetensors, F16ConversionMatchesExhaustiveReference) {
  // Every finite F16 bit pattern against sign · 2^(e-15) · (1 + m/1024) (or m·2^-24).
  Bytes data;
  for (uint32_t h = 0; h < 65536; ++h) append_values<uint16_t>(data, {static_cast<uint16_t>(h)});
  Bytes img = image(R"({"x":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]}})", data);
  SafetensorsFile f = parse_safetensors(img.data(), img.size());
  auto got = f.tensors.at("x").to_vector<float>();
  for (uint32_t h = 0; h < 65536; ++h) {
    const int e = (h >> 10) & 31;
    const int m = h & 1023;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 31) {
      EXPECT_TRUE(m ? std::isnan(got[h]) : std::isinf(got[h])) << h;
      continue;
    }
    const double want = e == 0 ? sign * m * std::ldexp(1.0, -24) : sign * std::ldexp(1.0 + m / 1024.0, e - 15);
    ASSERT_EQ(static_cast<double>(got[h]), want) << h;
  }
}

// ---- atomic writes ----

TEST(Safetensors, WriteIntoMissingDirectoryThrows) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/m.safetensors");
  const std::string msg = io_error_of([&] { save_safetensors(path, sample_tensors()); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST(Safetensors, FailedWriteKeepsOldFileAndLeavesNoTemp) {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  TensorDict small{{"w", from_list({1, 2, 3}, {3})}};
  save_safetensors(path, small);
  const Bytes old = read_bytes(path);

  // Make the write fail midway: a file-size limit of 64 KiB against a 4 MiB tensor.
  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit limit = old_limit;
  limit.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  std::string msg = io_error_of([&] { save_safetensors(path, TensorDict{{"big", zeros({1024, 1024})}}); });
  setrlimit(RLIMIT_FSIZE, &old_limit);
  sigaction(SIGXFSZ, &old_action, nullptr);

  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("too large"), std::string::npos) << msg;  // strerror(EFBIG)
  EXPECT_EQ(read_bytes(path), old);
  EXPECT_EQ(dir.entries(), std::set<std::string>{"ckpt.safetensors"});
  expect_same(load_safetensors(path).tensors.at("w"), small.at("w"), "w");
}

TEST(Safetensors, OverwriteReplacesFileAndLeavesNoTemp) {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, TensorDict{{"a", from_list({1, 2}, {2})}});
  SafetensorsFile mapped = load_safetensors(path);  // a live mapping of the old file
  TensorDict next{{"b", from_list({5, 6, 7}, {3}, DType::f64)}};
  save_safetensors(path, next, {{"step", "2"}});
  save_safetensors(path, next, {{"step", "3"}});
  EXPECT_EQ(dir.entries(), std::set<std::string>{"ckpt.safetensors"});
  SafetensorsFile f = load_safetensors(path);
  EXPECT_FALSE(f.tensors.contains("a"));
  expect_same(f.tensors.at("b"), next.at("b"), "b");
  EXPECT_EQ(f.metadata.at("step"), "3");
  // The old mapping still sees the old data (rename replaced the name, not the inode).
  EXPECT_EQ(mapped.tensors.at("a").to_vector<float>(), (std::vector<float>{1, 2}));
}

TEST(Safetensors, WriteOntoDirectoryThrowsAndCleansUp) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("target"));
  const std::string msg = io_error_of([&] { save_safetensors(dir.file("target"), sample_tensors()); });
  EXPECT_NE(msg.find(dir.file("target")), std::string::npos) << msg;
  EXPECT_NE(msg.find("exists and is not a regular file (a directory)"), std::string::npos) << msg;
  EXPECT_EQ(dir.entries(), std::set<std::string>{"target"});
}

TEST(Safetensors, AFifoIsRefusedWithoutBlocking) {
  // Issue 14 (second CLI sweep): `op -i FIFO`, `--state-in FIFO` and a FIFO model.safetensors
  // blocked in open() forever.
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("pipe").c_str(), 0600), 0);
  EXPECT_NE(io_error_of([&] { load_safetensors(dir.file("pipe")); }).find("not a regular file"), std::string::npos);
}

TEST(Safetensors, SaveRejectsBadInput) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  EXPECT_THROW(save_safetensors(path, TensorDict{{"x", Tensor()}}), ValueError);
  EXPECT_THROW(save_safetensors(path, TensorDict{{"__metadata__", zeros({1})}}), ValueError);
  EXPECT_THROW(save_safetensors(path, TensorDict{{"bad\xff", zeros({1})}}), ValueError);
  EXPECT_THROW(save_safetensors(path, TensorDict{}, {{"k", "\xc3"}}), ValueError);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Safetensors, LoadReportsMissingFilesAndDirectories) {
  TempDir dir;
  std::string msg = io_error_of([&] { load_safetensors(dir.file("missing.safetensors")); });
  EXPECT_NE(msg.find("missing.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
  msg = io_error_of([&] { load_safetensors(dir.path()); });
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
}

// ---- accepted variations ----

TEST(Safetensors, AcceptsWhitespaceUnknownFieldsAndEmptyMetadata) {
  Bytes data;
  append_values<float>(data, {2.0f, 4.0f});
  Bytes img = image(
      "{ \"__metadata__\" : { } ,\n\t\"x\": {\"shape\": [2], \"extra\": [1, {\"y\": null}],"
      " \"data_offsets\": [0, 8], \"dtype\": \"F32\"}}\n  ",
      data, false);
  SafetensorsFile f = parse_safetensors(img.data(), img.size());
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_EQ(f.tensors.at("x").to_vector<float>(), (std::vector<float>{2.0f, 4.0f}));
}

TEST(Safetensors, ZeroSizeTensorsAtRegionBoundaries) {
  Bytes data;
  append_values<float>(data, {1.0f, 2.0f});
  Bytes img = image(R"({"z0":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                    R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("z1":{"dtype":"I64","shape":[3,0],"data_offsets":[8,8]},)"
                    R"("big_empty":{"dtype":"F64","shape":[0,9223372036854775807],"data_offsets":[8,8]}})",
                    data);
  SafetensorsFile f = parse_safetensors(img.data(), img.size());
  EXPECT_EQ(f.tensors.at("z1").shape(), (Shape{3, 0}));
  EXPECT_EQ(f.tensors.at("big_empty").numel(), 0);
  EXPECT_EQ(f.tensors.at("a").to_vector<float>(), (std::vector<float>{1.0f, 2.0f}));
}

// ---- malformed files ----

struct Malformed {
  const char* label;
  Bytes bytes;
  const char* hint;  // a word the error message must contain
};

std::string entry(const std::string& dtype, const std::string& shape, const std::string& offs) {
  return fmt::format(R"({{"dtype":"{}","shape":{},"data_offsets":{}}})", dtype, shape, offs);
}

std::vector<Malformed> malformed_files() {
  auto with_len = [](uint64_t n, const std::string& rest) {
    Bytes b;
    append_u64(b, n);
    b.insert(b.end(), rest.begin(), rest.end());
    return b;
  };
  const std::string a4 = entry("F32", "[1]", "[0,4]");
  return {
      {"empty file", {}, "shorter"},
      {"5-byte file", {1, 0, 0, 0, 0}, "shorter"},
      {"header length beyond the file", with_len(100, "{}      "), "larger than"},
      {"header length over the cap", with_len(200'000'000, "{}      "), "limit"},
      {"header length 2^64-1", with_len(~uint64_t(0), "{}"), "limit"},
      {"zero header length", with_len(0, ""), "JSON object"},
      {"header does not start with {", image(" {}", 0), "JSON object"},
      {"header is an array", image("[1,2]", 0), "JSON object"},
      {"header is truncated JSON", image("{\"a\":", 0), "JSON"},
      {"header is not JSON", image("{abc}", 0), "JSON"},
      {"header has invalid UTF-8", image("{\"\xff\xfe\":1}", 0), "JSON"},
      {"header has garbage after the object", image("{} x", 0), "JSON"},
      {"header has a NUL byte", image(std::string("{}\0\0{", 5), 0), "NUL"},
      {"entry is not an object", image(R"({"a":5})", 0), "must be an object"},
      {"missing dtype", image(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4), "missing dtype"},
      {"missing shape", image(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4), "missing shape"},
      {"missing data_offsets", image(R"({"a":{"dtype":"F32","shape":[1]}})", 4), "missing data_offsets"},
      {"dtype is not a string", image(R"({"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", 4),
       "dtype must be a string"},
      {"shape is not an array", image("{\"a\":" + entry("F32", "1", "[0,4]") + "}", 4), "shape must be an array"},
      {"shape has a string dim", image("{\"a\":" + entry("F32", "[\"1\"]", "[0,4]") + "}", 4),
       "shape must be an array of integers"},
      {"negative dim", image("{\"a\":" + entry("F32", "[-1]", "[0,4]") + "}", 4), "negative"},
      {"non-integer dim", image("{\"a\":" + entry("F32", "[2.5]", "[0,4]") + "}", 4), "non-integer"},
      {"dim beyond int64", image("{\"a\":" + entry("F32", "[18446744073709551615]", "[0,4]") + "}", 4), "too large"},
      {"dim beyond uint64", image("{\"a\":" + entry("F32", "[1000000000000000000000]", "[0,4]") + "}", 4),
       "non-integer"},
      {"shape product overflows", image("{\"a\":" + entry("F32", "[4294967296,4294967296]", "[0,4]") + "}", 4),
       "overflow"},
      {"shape times dtype size overflows", image("{\"a\":" + entry("F64", "[2305843009213693952]", "[0,8]") + "}", 8),
       "size mismatch"},
      {"data_offsets has one number", image("{\"a\":" + entry("F32", "[1]", "[0]") + "}", 4), "data_offsets"},
      {"data_offsets is not an array", image("{\"a\":" + entry("F32", "[1]", "4") + "}", 4), "data_offsets"},
      {"negative data_offsets", image("{\"a\":" + entry("F32", "[1]", "[-4,0]") + "}", 4), "data_offsets"},
      {"float data_offsets", image("{\"a\":" + entry("F32", "[1]", "[0,4.0]") + "}", 4), "data_offsets"},
      {"begin after end", image("{\"a\":" + entry("F32", "[0]", "[8,4]") + "}", 8), "after end"},
      {"end beyond the data", image("{\"a\":" + entry("F32", "[2]", "[0,8]") + "}", 4), "beyond"},
      {"size does not match shape", image("{\"a\":" + entry("F32", "[3]", "[0,8]") + "}", 8), "size mismatch"},
      {"overlapping regions",
       image("{\"a\":" + entry("F32", "[2]", "[0,8]") + ",\"b\":" + entry("F32", "[2]", "[4,12]") + "}", 12),
       "overlap"},
      {"empty region inside another",
       image("{\"a\":" + entry("F32", "[2]", "[0,8]") + ",\"z\":" + entry("F32", "[0]", "[4,4]") + "}", 8), "overlap"},
      {"hole between regions", image("{\"a\":" + a4 + ",\"b\":" + entry("F32", "[1]", "[8,12]") + "}", 12), "hole"},
      {"hole at the start", image("{\"a\":" + entry("F32", "[1]", "[4,8]") + "}", 8), "hole"},
      {"trailing bytes", image("{\"a\":" + a4 + "}", 8), "trailing"},
      {"data but no tensors", image("{}", 8), "trailing"},
      {"duplicate tensor names", image("{\"a\":" + a4 + ",\"a\":" + a4 + "}", 4), "duplicate"},
      {"duplicate field in an entry",
       image(R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4), "duplicate"},
      {"duplicate metadata key", image(R"({"__metadata__":{"k":"1","k":"2"}})", 0), "duplicate"},
      {"metadata is not an object", image(R"({"__metadata__":"x"})", 0), "__metadata__"},
      {"metadata value is not a string", image(R"({"__metadata__":{"k":1}})", 0), "__metadata__"},
      {"unsupported dtype U8", image("{\"bytes\":" + entry("U8", "[4]", "[0,4]") + "}", 4),
       "tensor 'bytes' has dtype U8"},
      {"unsupported dtype BOOL", image("{\"m\":" + entry("BOOL", "[4]", "[0,4]") + "}", 4), "BOOL"},
      {"unsupported dtype F8_E4M3", image("{\"m\":" + entry("F8_E4M3", "[4]", "[0,4]") + "}", 4), "F8_E4M3"},
      {"unknown dtype", image("{\"a\":" + entry("F128", "[1]", "[0,16]") + "}", 16), "unknown dtype"},
      {"nesting too deep", image("{\"a\":" + entry("F32", "[[[[1]]]]", "[0,4]") + "}", 4), "nested"},
      {"deeply nested metadata", image("{\"__metadata__\":" + std::string(5000, '[') + "}", 0), "nested"},
  };
}

TEST(Safetensors, MalformedFilesThrowIOError) {
  TempDir dir;
  auto cases = malformed_files();
  ASSERT_GE(cases.size(), 15u);
  std::set<std::string> labels;
  int i = 0;
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.label);
    EXPECT_TRUE(labels.insert(c.label).second);
    EXPECT_THROW(parse_safetensors(c.bytes.data(), c.bytes.size()), IOError);
    std::string msg = io_error_of([&] { parse_safetensors(c.bytes.data(), c.bytes.size()); });
    EXPECT_NE(msg.find(c.hint), std::string::npos) << msg;
    EXPECT_NE(msg.find("<buffer>"), std::string::npos) << msg;

    const std::string path = dir.file(fmt::format("bad{}.safetensors", i++));
    write_bytes(path, c.bytes);
    EXPECT_THROW(load_safetensors(path), IOError);
    msg = io_error_of([&] { load_safetensors(path); });
    EXPECT_NE(msg.find(c.hint), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
  }
}

// ---- fuzzing ----

// Mutates a valid image: truncations, byte flips and overwrites (mostly in the header and
// its length, where they change the structure), JSON-ish characters spliced in.
Bytes mutate(const Bytes& valid, size_t header_end, std::mt19937_64& rng) {
  Bytes b = valid;
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const int rounds = 1 + static_cast<int>(pick(4));
  for (int r = 0; r < rounds && !b.empty(); ++r) {
    const size_t focus = std::min(b.size(), pick(4) == 0 ? b.size() : header_end);
    switch (pick(6)) {
      case 0:  // truncate
        b.resize(pick(b.size() + 1));
        break;
      case 1:  // flip one bit
        b[pick(focus)] ^= static_cast<uint8_t>(1u << pick(8));
        break;
      case 2:  // random byte
        b[pick(focus)] = static_cast<uint8_t>(rng());
        break;
      case 3: {  // JSON-significant character
        static const char kChars[] = "{}[],:\"0123456789-.eE \\u";
        b[pick(focus)] = static_cast<uint8_t>(kChars[pick(sizeof(kChars) - 1)]);
        break;
      }
      case 4:  // change a byte of the header length
        b[pick(std::min<size_t>(8, b.size()))] = static_cast<uint8_t>(rng());
        break;
      case 5: {  // delete or duplicate a span
        const size_t at = pick(focus);
        const size_t len = std::min(b.size() - at, 1 + pick(16));
        if (pick(2))
          b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
        else {
          const Bytes span(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
          b.insert(b.begin() + static_cast<long>(at), span.begin(), span.end());
        }
        break;
      }
    }
  }
  return b;
}

TEST(Safetensors, FuzzedFilesLoadOrThrowIOError) {
  TempDir dir;
  const std::string path = dir.file("valid.safetensors");
  save_safetensors(path, sample_tensors(), {{"a", "b"}});
  Bytes valid = read_bytes(path);
  // Append-free variant with half-precision tensors, to fuzz the conversion paths too.
  Bytes half;
  append_values<uint16_t>(half, {0x3C00, 0x7C00, 0x0001, 0x3F80});
  Bytes valid_half =
      image("{\"h\":" + entry("F16", "[2]", "[0,4]") + ",\"b\":" + entry("BF16", "[1,2]", "[4,8]") + "}", half);

  std::mt19937_64 rng(12345);
  int ok = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    const Bytes& base = (iter % 4 == 3) ? valid_half : valid;
    uint64_t n = 0;
    std::memcpy(&n, base.data(), 8);
    Bytes b = mutate(base, 8 + n, rng);
    const bool via_file = iter % 10 == 0;
    try {
      if (via_file) {
        write_bytes(dir.file("fuzz.safetensors"), b);
        SafetensorsFile f = load_safetensors(dir.file("fuzz.safetensors"));
        for (const auto& [name, t] : f.tensors) (void)t.to_vector<double>();  // touch data
      } else {
        SafetensorsFile f = parse_safetensors(b.data(), b.size());
        for (const auto& [name, t] : f.tensors) (void)t.to_vector<double>();
      }
      ++ok;
    } catch (const IOError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "iteration " << iter << ": unexpected exception " << e.what();
    } catch (...) {
      ADD_FAILURE() << "iteration " << iter << ": unexpected non-std exception";
    }
  }
  RecordProperty("loaded", ok);
  RecordProperty("rejected", rejected);
  // Both outcomes occur (data-only mutations load, structural ones are rejected).
  EXPECT_GT(ok, 50);
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace lnx
