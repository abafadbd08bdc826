// Token files: round trips at both id widths, atomic writes, the train/val split, a table of
// malformed files (each must raise IOError naming the file and the problem) and a seeded
// mutation loop (every mutated file either opens with all ids < vocab, or raises IOError).
#include "data/token_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>

#include "tensor/error.h"

namespace lnx::data {
namespace {

using Bytes = std::vector<unsigned char>;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "lnx_token_file_XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  size_t entry_count() const {
    return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(path_), {}));
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
template <class T> void poke(Bytes& b, size_t offset, T value) { std::memcpy(b.data() + offset, &value, sizeof(T)); }

// Expects IOError whose message names the path and contains `what`.
void expect_io_error(const std::string& path, const std::string& what) {
  try {
    TokenFile f(path);
    ADD_FAILURE() << "opened a malformed file; expected an error containing '" << what << "'";
  } catch (const IOError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

TEST(TokenFile, RoundTripUint16) {
  TempDir dir;
  const std::string path = dir.file("a.bin");
  std::vector<int32_t> ids;
  for (int i = 0; i < 1000; ++i) ids.push_back((i * 37) % 300);
  write_token_file(path, ids, 300);
  EXPECT_EQ(read_bytes(path).size(), 32u + 2u * ids.size());  // header + 2-byte ids, no padding
  const TokenFile f(path);
  EXPECT_EQ(f.size(), 1000);
  EXPECT_EQ(f.vocab_size(), 300);
  EXPECT_EQ(f.id_bytes(), 2);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(f.at(i), ids[i]);
  std::vector<int64_t> out(10);
  f.copy(995, 5, out.data());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(out[i], ids[995 + i]);
}

TEST(TokenFile, WidthFollowsVocab) {
  TempDir dir;
  // 65536 is the largest vocabulary uint16 holds (ids 0 .. 65535).
  write_token_file(dir.file("edge.bin"), {0, 65535, 1}, 65536);
  const TokenFile edge(dir.file("edge.bin"));
  EXPECT_EQ(edge.id_bytes(), 2);
  EXPECT_EQ(edge.at(1), 65535);

  write_token_file(dir.file("wide.bin"), {65536, 69999, 0, 12345}, 70000);
  const TokenFile wide(dir.file("wide.bin"));
  EXPECT_EQ(wide.id_bytes(), 4);
  EXPECT_EQ(read_bytes(dir.file("wide.bin")).size(), 32u + 16u);
  EXPECT_EQ(wide.at(0), 65536);
  EXPECT_EQ(wide.at(1), 69999);
  int64_t out[4];
  wide.copy(0, 4, out);
  EXPECT_EQ(out[3], 12345);
}

TEST(TokenFile, EmptyStreamAndSharedMapping) {
  TempDir dir;
  write_token_file(dir.file("empty.bin"), {}, 10);
  const TokenFile empty(dir.file("empty.bin"));
  EXPECT_EQ(empty.size(), 0);
  EXPECT_THROW(empty.at(0), ValueError);
  empty.copy(0, 0, nullptr);  // an empty range is fine

  write_token_file(dir.file("b.bin"), {4, 5, 6}, 10);
  TokenFile copy;
  {
    const TokenFile original(dir.file("b.bin"));
    copy = original;
  }
  EXPECT_EQ(copy.at(2), 6);  // the copy keeps the mapping alive
  EXPECT_EQ(copy.path(), dir.file("b.bin"));
}

TEST(TokenFile, AccessOutOfRangeIsValueError) {
  TempDir dir;
  write_token_file(dir.file("c.bin"), {1, 2, 3}, 4);
  const TokenFile f(dir.file("c.bin"));
  int64_t out[4];
  EXPECT_THROW(f.at(-1), ValueError);
  EXPECT_THROW(f.at(3), ValueError);
  EXPECT_THROW(f.copy(1, 3, out), ValueError);
  EXPECT_THROW(f.copy(-1, 1, out), ValueError);
  EXPECT_THROW(f.copy(0, -1, out), ValueError);
  f.copy(0, 3, out);
  EXPECT_EQ(out[0], 1);
}

TEST(TokenFile, BadWritesLeaveTheOldFileAndNoLitter) {
  TempDir dir;
  const std::string path = dir.file("d.bin");
  write_token_file(path, {1, 2}, 3);
  const Bytes before = read_bytes(path);
  EXPECT_THROW(write_token_file(path, {1, 3}, 3), ValueError);              // id == vocab
  EXPECT_THROW(write_token_file(path, {-1}, 3), ValueError);                // negative id
  EXPECT_THROW(write_token_file(path, {0}, 0), ValueError);                 // empty vocabulary
  EXPECT_THROW(write_token_file(path, {0}, int64_t(1) << 31), ValueError);  // ids are int32
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_EQ(dir.entry_count(), 1u);  // no temporary files left behind
  EXPECT_THROW(write_token_file(dir.file("no/such/dir/e.bin"), {0}, 3), IOError);
  // Overwriting replaces the content.
  write_token_file(path, {2, 2, 2}, 3);
  EXPECT_EQ(TokenFile(path).size(), 3);
  EXPECT_EQ(dir.entry_count(), 1u);
}

TEST(TokenFile, MalformedFilesRaiseIOError) {
  TempDir dir;
  const std::string good = dir.file("good.bin");
  write_token_file(good, {0, 1, 299, 7}, 300);  // 32 + 8 bytes
  const Bytes base = read_bytes(good);
  struct Case {
    const char* name;
    std::function<void(Bytes&)> mutate;
    const char* what;
  };
  const std::vector<Case> cases = {
      {"empty", [](Bytes& b) { b.clear(); }, "shorter than the 32-byte header"},
      {"short", [](Bytes& b) { b.resize(20); }, "shorter than the 32-byte header"},
      {"magic", [](Bytes& b) { b[0] = 'X'; }, "magic"},
      {"version", [](Bytes& b) { poke<uint32_t>(b, 8, 2); }, "format version is 2"},
      {"width3", [](Bytes& b) { poke<uint32_t>(b, 12, 3); }, "id width is 3 bytes"},
      {"narrow", [](Bytes& b) { poke<int64_t>(b, 16, 70000); }, "does not fit 2-byte ids"},
      {"vocab0", [](Bytes& b) { poke<int64_t>(b, 16, 0); }, "vocab_size 0 is outside"},
      {"vocabneg", [](Bytes& b) { poke<int64_t>(b, 16, -5); }, "vocab_size -5 is outside"},
      {"vocabhuge", [](Bytes& b) { poke<int64_t>(b, 16, int64_t(1) << 40); }, "is outside"},
      {"truncated", [](Bytes& b) { b.resize(b.size() - 1); }, "header says 4 ids"},
      {"trailing", [](Bytes& b) { b.push_back(0); }, "header says 4 ids"},
      {"countneg", [](Bytes& b) { poke<int64_t>(b, 24, -1); }, "header says -1 ids"},
      {"countbig", [](Bytes& b) { poke<int64_t>(b, 24, INT64_MAX); }, "header says"},
      {"countoverflow", [](Bytes& b) { poke<int64_t>(b, 24, (INT64_MAX / 2) + 5); }, "header says"},
      {"idtoolarge", [](Bytes& b) { poke<uint16_t>(b, 32 + 2 * 2, 300); }, "id 300 at position 2"},
      {"idmax", [](Bytes& b) { poke<uint16_t>(b, 32 + 2 * 3, 65535); }, "id 65535 at position 3"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes b = base;
    c.mutate(b);
    const std::string path = dir.file(std::string(c.name) + ".bin");
    write_bytes(path, b);
    expect_io_error(path, c.what);
  }
  expect_io_error(dir.file("missing.bin"), "cannot open");
  std::filesystem::create_directory(dir.file("adir"));
  expect_io_error(dir.file("adir"), "not a regular file");
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  expect_io_error(dir.file("fifo"), "not a regular file");  // must not block waiting for a writer

  // A 4-byte file whose uint32 id is >= vocab.
  write_token_file(dir.file("wide.bin"), {5, 69999}, 70000);
  Bytes wide = read_bytes(dir.file("wide.bin"));
  poke<uint32_t>(wide, 32 + 4, 0xFFFFFFFFu);  // would be negative as int32
  write_bytes(dir.file("wide_bad.bin"), wide);
  expect_io_error(dir.file("wide_bad.bin"), "id 4294967295 at position 1");
}

TEST(TokenFile, MutatedFilesOpenCleanlyOrRaise) {
  TempDir dir;
  std::vector<int32_t> ids;
  for (int i = 0; i < 64; ++i) ids.push_back((i * 13) % 200);
  write_token_file(dir.file("base.bin"), ids, 200);
  const Bytes base = read_bytes(dir.file("base.bin"));
  std::mt19937_64 rng(1234);
  int opened = 0, rejected = 0;
  for (int iter = 0; iter < 600; ++iter) {
    Bytes b = base;
    const int kind = static_cast<int>(rng() % 3);
    if (kind == 0) {  // flip random bytes, biased to the header
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) b[rng() % (rng() % 2 ? 32 : b.size())] = static_cast<unsigned char>(rng());
    } else if (kind == 1) {  // truncate or extend
      b.resize(rng() % (b.size() + 16), static_cast<unsigned char>(rng()));
    } else {  // a random count
      poke<int64_t>(b, 24, static_cast<int64_t>(rng()) >> (rng() % 64));
    }
    const std::string path = dir.file("m.bin");
    write_bytes(path, b);
    try {
      const TokenFile f(path);
      ++opened;
      for (int64_t i = 0; i < f.size(); ++i) {
        ASSERT_GE(f.at(i), 0);
        ASSERT_LT(f.at(i), f.vocab_size());
      }
    } catch (const IOError&) {
      ++rejected;
    }
  }
  EXPECT_GT(opened, 0);  // some mutations (e.g. a changed id still < vocab) stay valid
  EXPECT_GT(rejected, 0);
}

TEST(TokenFile, PrepareSplitsOffTheTail) {
  TempDir dir;
  std::vector<int32_t> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(i);
  const std::string out = dir.file("nested/data");
  const TokenSplit split = prepare_token_files(ids, out, 0.1, 100);
  EXPECT_EQ(split.train_path, out + "/train.bin");
  EXPECT_EQ(split.val_path, out + "/val.bin");
  EXPECT_EQ(split.train_tokens, 90);
  EXPECT_EQ(split.val_tokens, 10);
  const TokenFile train(split.train_path), val(split.val_path);
  ASSERT_EQ(train.size(), 90);
  ASSERT_EQ(val.size(), 10);
  EXPECT_EQ(train.at(0), 0);
  EXPECT_EQ(train.at(89), 89);
  EXPECT_EQ(val.at(0), 90);  // the validation part is the last 10% of the stream
  EXPECT_EQ(val.at(9), 99);

  // floor(0.25 * 7) = 1 validation token.
  const TokenSplit small = prepare_token_files({1, 2, 3, 4, 5, 6, 7}, dir.file("small"), 0.25, 8);
  EXPECT_EQ(small.val_tokens, 1);
  EXPECT_EQ(TokenFile(small.val_path).at(0), 7);

  const TokenSplit none = prepare_token_files({1, 2, 3}, dir.file("none"), 0.0, 8);
  EXPECT_EQ(TokenFile(none.val_path).size(), 0);
  EXPECT_EQ(TokenFile(none.train_path).size(), 3);

  EXPECT_THROW(prepare_token_files(ids, dir.file("x"), 1.0, 100), ValueError);
  EXPECT_THROW(prepare_token_files(ids, dir.file("x"), -0.1, 100), ValueError);
  EXPECT_THROW(prepare_token_files(ids, dir.file("x"), 0.1, 50), ValueError);  // id 50 >= vocab
}

}  // namespace
}  // namespace lnx::data
