// Token files: atomic writer, validating memory-mapped reader, train/val split.
// Positions and counts in tokens; byte offsets only where the file layout needs them.
#include "data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "io/atomic_file.h"
#include "tensor/error.h"

namespace lnx::data {

static_assert(std::endian::native == std::endian::little,
              "token files are little-endian and read by memcpy; a big-endian host needs byte swaps");

namespace {

std::string errno_text(int err) { return std::strerror(err); }

template <class... Args>
[[noreturn]] void fail(const std::string& path, fmt::format_string<Args...> what, Args&&... args) {
  throw IOError(fmt::format("[token_file] '{}': {}", path, fmt::format(what, std::forward<Args>(args)...)));
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void check_vocab(int64_t vocab_size, const char* op) {
  LNX_CHECK(vocab_size >= 1 && vocab_size <= kMaxTokenVocab, ValueError, "[{}] vocab_size must be in [1, {}], got {}",
            op, kMaxTokenVocab, vocab_size);
}

// The file's bytes, in memory; built fully before any file is touched so bad ids fail early.
std::vector<unsigned char> encode(const std::vector<int32_t>& ids, int64_t vocab_size) {
  const int64_t width = token_file_id_bytes(vocab_size);
  std::vector<unsigned char> bytes(static_cast<size_t>(kTokenFileHeaderBytes + width * int64_t(ids.size())));
  unsigned char* h = bytes.data();
  const uint32_t version = kTokenFileVersion, width32 = static_cast<uint32_t>(width);
  const int64_t count = static_cast<int64_t>(ids.size());
  std::memcpy(h, kTokenFileMagic, 8);
  std::memcpy(h + 8, &version, 4);
  std::memcpy(h + 12, &width32, 4);
  std::memcpy(h + 16, &vocab_size, 8);
  std::memcpy(h + 24, &count, 8);
  unsigned char* out = h + kTokenFileHeaderBytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    LNX_CHECK(id >= 0 && id < vocab_size, ValueError,
              "[write_token_file] ids must be in [0, {}), id {} at position {} is not", vocab_size, id, i);
    if (width == 2) {
      const uint16_t v = static_cast<uint16_t>(id);
      std::memcpy(out + 2 * i, &v, 2);
    } else {
      const uint32_t v = static_cast<uint32_t>(id);
      std::memcpy(out + 4 * i, &v, 4);
    }
  }
  return bytes;
}

}  // namespace

int64_t token_file_id_bytes(int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

void write_token_file(const std::string& path, const std::vector<int32_t>& ids, int64_t vocab_size) {
  check_vocab(vocab_size, "write_token_file");
  const std::vector<unsigned char> bytes = encode(ids, vocab_size);

  io::write_file_atomic("token_file", path, [&](io::AtomicFileSink& out) { out.write(bytes.data(), bytes.size()); });
}

// ---- reading ----

struct TokenFile::Mapping {
  std::string path;
  void* base = nullptr;
  size_t bytes = 0;
  ~Mapping() {
    if (base) ::munmap(base, bytes);
  }
};

TokenFile::TokenFile(const std::string& path) {
  Fd f;
  // O_NONBLOCK: opening a FIFO must fail below as "not a regular file", not wait for a writer.
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (f.fd < 0) fail(path, "cannot open: {}", errno_text(errno));
  struct stat st;
  if (::fstat(f.fd, &st) != 0) fail(path, "cannot stat: {}", errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  const int64_t file_bytes = static_cast<int64_t>(st.st_size);
  if (file_bytes < kTokenFileHeaderBytes)
    fail(path, "file is {} bytes, shorter than the {}-byte header", file_bytes, kTokenFileHeaderBytes);

  auto map = std::make_shared<Mapping>();
  map->path = path;
  void* p = ::mmap(nullptr, static_cast<size_t>(file_bytes), PROT_READ, MAP_PRIVATE, f.fd, 0);
  if (p == MAP_FAILED) fail(path, "cannot map: {}", errno_text(errno));
  map->base = p;
  map->bytes = static_cast<size_t>(file_bytes);

  const auto* h = static_cast<const unsigned char*>(p);
  uint32_t version = 0, width = 0;
  int64_t vocab = 0, count = 0;
  std::memcpy(&version, h + 8, 4);
  std::memcpy(&width, h + 12, 4);
  std::memcpy(&vocab, h + 16, 8);
  std::memcpy(&count, h + 24, 8);
  if (std::memcmp(h, kTokenFileMagic, 8) != 0) fail(path, "not a token file (magic bytes are not 'LNXTOKEN')");
  if (version != kTokenFileVersion)
    fail(path, "format version is {}, this reader knows version {}", version, kTokenFileVersion);
  if (vocab < 1 || vocab > kMaxTokenVocab) fail(path, "vocab_size {} is outside [1, {}]", vocab, kMaxTokenVocab);
  if (width != 2 && width != 4) fail(path, "id width is {} bytes, expected 2 (uint16) or 4 (uint32)", width);
  if (width == 2 && vocab > 65536) fail(path, "vocab_size {} does not fit 2-byte ids", vocab);
  const int64_t payload = file_bytes - kTokenFileHeaderBytes;
  // Compare without multiplying count (hostile counts could overflow).
  if (count < 0 || count > payload / width || count * width != payload)
    fail(path, "header says {} ids of {} bytes but the file holds {} bytes after the header", count, width, payload);

  const unsigned char* ids = h + kTokenFileHeaderBytes;
  for (int64_t i = 0; i < count; ++i) {
    int64_t id;
    if (width == 2) {
      uint16_t v;
      std::memcpy(&v, ids + 2 * i, 2);
      id = v;
    } else {
      uint32_t v;
      std::memcpy(&v, ids + 4 * i, 4);
      id = v;
    }
    if (id >= vocab) fail(path, "id {} at position {} is not below vocab_size {}", id, i, vocab);
  }
  map_ = std::move(map);
  ids_ = ids;
  count_ = count;
  vocab_size_ = vocab;
  id_bytes_ = width;
}

const std::string& TokenFile::path() const {
  static const std::string kNone;
  return map_ ? map_->path : kNone;
}

int32_t TokenFile::at(int64_t i) const {
  LNX_CHECK(i >= 0 && i < count_, ValueError, "[TokenFile::at] index must be in [0, {}), got {}", count_, i);
  if (id_bytes_ == 2) {
    uint16_t v;
    std::memcpy(&v, ids_ + 2 * i, 2);
    return v;
  }
  uint32_t v;
  std::memcpy(&v, ids_ + 4 * i, 4);
  return static_cast<int32_t>(v);
}

void TokenFile::copy(int64_t start, int64_t n, int64_t* out) const {
  LNX_CHECK(start >= 0 && n >= 0 && start <= count_ && n <= count_ - start, ValueError,
            "[TokenFile::copy] range [{}, {}+{}) must lie inside the file's {} tokens", start, start, n, count_);
  if (id_bytes_ == 2) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, ids_ + 2 * (start + i), 2);
      out[i] = v;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, ids_ + 4 * (start + i), 4);
      out[i] = v;
    }
  }
}

TokenSplit prepare_token_files(const std::vector<int32_t>& ids, const std::string& dir, double val_fraction,
                               int64_t vocab_size) {
  LNX_CHECK(val_fraction >= 0.0 && val_fraction < 1.0, ValueError,
            "[prepare_token_files] val_fraction must be in [0, 1), got {}", val_fraction);
  check_vocab(vocab_size, "prepare_token_files");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IOError(fmt::format("[prepare_token_files] cannot create directory '{}': {}", dir, ec.message()));

  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t n_val = std::min<int64_t>(n, static_cast<int64_t>(std::floor(val_fraction * static_cast<double>(n))));
  TokenSplit split;
  split.train_path = dir + "/train.bin";
  split.val_path = dir + "/val.bin";
  split.train_tokens = n - n_val;
  split.val_tokens = n_val;
  write_token_file(split.train_path, std::vector<int32_t>(ids.begin(), ids.end() - n_val), vocab_size);
  write_token_file(split.val_path, std::vector<int32_t>(ids.end() - n_val, ids.end()), vocab_size);
  return split;
}

}  // namespace lnx::data
