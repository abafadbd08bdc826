// Windows and the prefetching Loader: ids/targets alignment with the file, determinism in
// (seed, index), epoch mode visiting every window once per epoch, resume equivalence, bounded
// prefetch, shutdown while the producer is blocked, and producer exceptions reaching next().
#include "data/loader.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>

#include "data/loader_rng.h"
#include "tensor/error.h"

namespace lnx::data {
namespace {

using namespace std::chrono_literals;

// A token file whose token at position i is i % 1000, so a window's start is readable from
// its first token.
class CountingFile {
 public:
  explicit CountingFile(int64_t n) {
    std::string tmpl = ::testing::TempDir() + "lnx_loader_XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < n; ++i) ids.push_back(static_cast<int32_t>(i % 1000));
    write_token_file(dir_ + "/t.bin", ids, 1000);
    file = TokenFile(dir_ + "/t.bin");
  }
  ~CountingFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TokenFile file;

 private:
  std::string dir_;
};

std::vector<int64_t> values(const Tensor& t) { return t.to_vector<int64_t>(); }

void expect_same(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(values(a.ids), values(b.ids));
  EXPECT_EQ(values(a.targets), values(b.targets));
}

TEST(WindowSource, WindowsMatchTheFileAndTargetsAreShifted) {
  CountingFile data(500);
  const int64_t B = 4, T = 16;
  const WindowSource source(data.file, B, T, 7);
  for (int64_t k = 0; k < 20; ++k) {
    const Batch batch = source.batch(k);
    ASSERT_EQ(batch.ids.shape(), (Shape{B, T}));
    ASSERT_EQ(batch.targets.shape(), (Shape{B, T}));
    EXPECT_EQ(batch.ids.dtype(), DType::i64);
    EXPECT_FALSE(batch.mask.defined());
    EXPECT_EQ(batch.index, k);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t start = source.window_start(k, b);
      ASSERT_GE(start, 0);
      ASSERT_LE(start + T, 499);  // the T + 1 tokens fit
      for (int64_t t = 0; t < T; ++t) {
        ASSERT_EQ(batch.ids.at({b, t}), start + t);
        ASSERT_EQ(batch.targets.at({b, t}), start + t + 1);
      }
    }
  }
}

TEST(WindowSource, BatchIsAPureFunctionOfSeedAndIndex) {
  CountingFile data(5000);
  const WindowSource a(data.file, 8, 32, 42), b(data.file, 8, 32, 42), other(data.file, 8, 32, 43);
  const Batch late = a.batch(1000);  // out of order first: no hidden running state
  for (int64_t k = 0; k < 5; ++k) expect_same(a.batch(k), b.batch(k));
  expect_same(b.batch(1000), late);
  EXPECT_NE(values(a.batch(0).ids), values(other.batch(0).ids));
  EXPECT_NE(values(a.batch(0).ids), values(a.batch(1).ids));
}

TEST(WindowSource, RandomStartsCoverEveryPosition) {
  CountingFile data(13);  // T = 10: starts 0, 1, 2 are the only ones that fit
  const WindowSource source(data.file, 2, 10, 3);
  std::set<int64_t> seen;
  for (int64_t k = 0; k < 100; ++k)
    for (int64_t b = 0; b < 2; ++b) seen.insert(source.window_start(k, b));
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1, 2}));
}

TEST(WindowSource, EpochModeVisitsEveryWindowOncePerEpoch) {
  CountingFile data(1000);
  const int64_t B = 3, T = 10;
  const WindowSource source(data.file, B, T, 11, WindowSource::Order::epoch);
  const int64_t W = source.windows_per_epoch();
  ASSERT_EQ(W, 99);  // (1000 - 1) / 10
  std::vector<int64_t> first, second;
  for (int64_t draw = 0; draw < 2 * W; ++draw) {
    const int64_t start = source.window_start(draw / B, draw % B);
    ASSERT_EQ(start % T, 0);
    (draw < W ? first : second).push_back(start);
  }
  std::set<int64_t> expected;
  for (int64_t w = 0; w < W; ++w) expected.insert(w * T);
  EXPECT_EQ(std::set<int64_t>(first.begin(), first.end()), expected);
  EXPECT_EQ(std::set<int64_t>(second.begin(), second.end()), expected);
  EXPECT_NE(first, second);  // each epoch is shuffled afresh
  // A window's targets run into the next window's first token, never past the file.
  const Batch last = source.batch(0);
  EXPECT_LE(last.targets.to_vector<int64_t>().back(), 999);
}

TEST(WindowSource, FeistelPermutationIsABijection) {
  for (const uint64_t n : {1ull, 2ull, 3ull, 5ull, 17ull, 64ull, 1000ull, 4097ull}) {
    const FeistelPermutation perm(n, 99);
    std::vector<bool> hit(n, false);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t v = perm(i);
      ASSERT_LT(v, n);
      ASSERT_FALSE(hit[v]) << "n=" << n << " value " << v << " twice";
      hit[v] = true;
    }
  }
}

TEST(WindowSource, RejectsBadArguments) {
  CountingFile data(10);
  EXPECT_THROW(WindowSource(data.file, 0, 4, 1), ValueError);
  EXPECT_THROW(WindowSource(data.file, 1, 0, 1), ValueError);
  EXPECT_THROW(WindowSource(data.file, 1, 10, 1), ValueError);  // needs 11 tokens
  EXPECT_NO_THROW(WindowSource(data.file, 1, 9, 1));
  EXPECT_THROW(WindowSource(data.file, 1, 4, 1).batch(-1), ValueError);
}

TEST(Loader, DeliversTheSourceBatchesInOrder) {
  CountingFile data(2000);
  const WindowSource source(data.file, 4, 8, 5);
  Loader loader(source, 0, 3);
  for (int64_t k = 0; k < 25; ++k) {
    EXPECT_EQ(loader.next_index(), k);
    expect_same(loader.next(), source.batch(k));
  }
}

TEST(Loader, ResumeAtStepKSeesTheSameBatches) {
  CountingFile data(2000);
  const WindowSource source(data.file, 4, 8, 5, WindowSource::Order::epoch);
  std::vector<Batch> uninterrupted;
  {
    Loader loader(source, 0, 2);
    for (int k = 0; k < 12; ++k) uninterrupted.push_back(loader.next());
  }
  // A "resumed" run: a fresh source object and loader, starting at step 7.
  const WindowSource fresh(data.file, 4, 8, 5, WindowSource::Order::epoch);
  Loader resumed(fresh, 7, 5);
  for (int k = 7; k < 12; ++k) expect_same(resumed.next(), uninterrupted[k]);
  resumed.restart(2);
  EXPECT_EQ(resumed.next_index(), 2);
  expect_same(resumed.next(), uninterrupted[2]);
}

// A source that counts its calls and returns tiny batches.
Loader::Source counting_source(std::atomic<int>& calls) {
  return [&calls](int64_t index) {
    ++calls;
    Batch b;
    b.ids = full({1, 1}, static_cast<double>(index), DType::i64);
    b.targets = b.ids;
    return b;
  };
}

bool wait_for(const std::function<bool()>& cond) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(Loader, PrefetchIsBoundedAndShutdownWakesABlockedProducer) {
  std::atomic<int> calls{0};
  const auto t0 = std::chrono::steady_clock::now();
  {
    Loader loader(counting_source(calls), 0, 3);
    ASSERT_TRUE(wait_for([&] { return calls.load() >= 3; }));
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(calls.load(), 3);  // queue full: the producer waits instead of running ahead
    EXPECT_EQ(loader.next().ids.at({0, 0}), 0);
    ASSERT_TRUE(wait_for([&] { return calls.load() >= 4; }));  // room again: one more made
  }  // destroyed while the producer is blocked on the full queue
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(calls.load(), 4);
}

TEST(Loader, ShutdownWaitsForASlowSourceCall) {
  std::atomic<int> calls{0}, finished{0};
  {
    Loader loader(
        [&](int64_t index) {
          ++calls;
          std::this_thread::sleep_for(50ms);
          ++finished;
          Batch b;
          b.index = index;
          return b;
        },
        0, 1);
    ASSERT_TRUE(wait_for([&] { return calls.load() >= 1; }));
  }
  EXPECT_EQ(calls.load(), finished.load());  // no call was cut off mid-way
}

TEST(Loader, ProducerExceptionsReachNext) {
  Loader loader(
      [](int64_t index) {
        if (index == 3) throw ValueError("[test] index 3 is broken");
        Batch b;
        b.ids = full({1, 1}, static_cast<double>(index), DType::i64);
        return b;
      },
      0, 8);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(loader.next().ids.at({0, 0}), k);  // earlier batches arrive
  for (int repeat = 0; repeat < 2; ++repeat) {
    try {
      loader.next();
      ADD_FAILURE() << "expected the producer's exception";
    } catch (const ValueError& e) {
      EXPECT_STREQ(e.what(), "[test] index 3 is broken");
    }
  }
  EXPECT_EQ(loader.next_index(), 3);
  // restart() clears the failure.
  loader.restart(5);
  EXPECT_EQ(loader.next().ids.at({0, 0}), 5);
}

TEST(Loader, ExceptionAtTheStartIndexAndBadArguments) {
  Loader loader([](int64_t) -> Batch { throw std::runtime_error("no data"); }, 4, 2);
  EXPECT_THROW(loader.next(), std::runtime_error);
  EXPECT_THROW(Loader(Loader::Source(), 0, 2), ValueError);
  std::atomic<int> calls{0};
  EXPECT_THROW(Loader(counting_source(calls), 0, 0), ValueError);
  EXPECT_THROW(Loader(counting_source(calls), -1, 2), ValueError);
}

}  // namespace
}  // namespace lnx::data
