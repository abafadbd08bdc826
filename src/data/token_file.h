// Token files: a tokenised text stream on disk, memory-mapped for reading.
//
// Layout (little-endian, 32-byte header, then the ids with no padding):
//   bytes  0..7   magic "LNXTOKEN"
//   bytes  8..11  uint32 format version (1)
//   bytes 12..15  uint32 bytes per id: 2 (uint16) when vocab_size <= 65536, else 4 (uint32)
//   bytes 16..23  int64  vocab_size (1 .. 2^31 - 1)
//   bytes 24..31  int64  count: number of ids that follow
//   bytes 32..    count ids of that width; the file ends right after the last one
// Units: positions and counts are in tokens, never bytes, in every function below.
//
// Files are untrusted. TokenFile validates everything when it opens a file — header, exact
// size, and that every id is < vocab_size (one linear scan, memory speed) — so at() and copy()
// need no per-token checks and a malformed file fails at once with IOError naming the file and
// the problem, never later in the middle of training.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lnx::data {

inline constexpr char kTokenFileMagic[8] = {'L', 'N', 'X', 'T', 'O', 'K', 'E', 'N'};
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr int64_t kTokenFileHeaderBytes = 32;
inline constexpr int64_t kMaxTokenVocab = 2147483647;  // ids are int32

// Bytes per id the writer uses for a vocabulary: 2 up to 65536 tokens, else 4.
int64_t token_file_id_bytes(int64_t vocab_size);

// Writes ids atomically: a temporary file in the same directory, fsync, rename onto path,
// then fsync of the directory, so a kill at any moment leaves either the old file or the new.
// ValueError for vocab_size outside [1, 2^31-1] or an id outside [0, vocab_size);
// IOError when the file cannot be written.
void write_token_file(const std::string& path, const std::vector<int32_t>& ids, int64_t vocab_size);

// A read-only memory-mapped token file. Copies are cheap and share the mapping (threads may
// read one concurrently). The file must not be truncated by another process while mapped.
class TokenFile {
 public:
  TokenFile() = default;  // empty, no file
  // Opens and validates path; IOError on any problem (missing, short, bad magic/version/
  // width/vocab, size not matching count, an id >= vocab_size).
  explicit TokenFile(const std::string& path);

  const std::string& path() const;
  int64_t size() const { return count_; }
  int64_t vocab_size() const { return vocab_size_; }
  int64_t id_bytes() const { return id_bytes_; }

  // Token i, 0 <= i < size() (ValueError otherwise).
  int32_t at(int64_t i) const;
  // Tokens [start, start + n) widened to int64 into out; the range must lie inside the file.
  void copy(int64_t start, int64_t n, int64_t* out) const;

 private:
  struct Mapping;
  std::shared_ptr<const Mapping> map_;
  const unsigned char* ids_ = nullptr;  // first id inside the mapping
  int64_t count_ = 0;
  int64_t vocab_size_ = 0;
  int64_t id_bytes_ = 0;
};

// Where prepare_token_files put the split, and how many tokens each side got.
struct TokenSplit {
  std::string train_path, val_path;
  int64_t train_tokens = 0, val_tokens = 0;
};

// Splits ids into dir/train.bin and dir/val.bin (dir is created if missing). The validation
// part is the LAST floor(val_fraction * ids.size()) tokens of the stream and the training part
// everything before: a contiguous tail, not a random subset, so no training window can overlap
// a validation window. val_fraction must be in [0, 1); val.bin may hold zero tokens.
TokenSplit prepare_token_files(const std::vector<int32_t>& ids, const std::string& dir, double val_fraction,
                               int64_t vocab_size);

}  // namespace lnx::data
