// shard_batch: the ranks' shards of a global batch are disjoint, in order, and together the
// whole batch, for rows and for packed sequences, whatever the number of ranks.
#include <gtest/gtest.h>

#include <algorithm>

#include "data/loader.h"
#include "tensor/ops.h"

namespace lnx::data {
namespace {

Batch rows_batch(int64_t B, int64_t T) {
  std::vector<int64_t> ids, targets;
  for (int64_t i = 0; i < B * T; ++i) {
    ids.push_back(i);
    targets.push_back(i % 3 == 0 ? -100 : i + 1);
  }
  Batch b;
  b.ids = from_vector(ids, {B, T});
  b.targets = from_vector(targets, {B, T});
  b.index = 7;
  return b;
}

int64_t scored(const Tensor& targets) {
  const std::vector<int64_t> t = targets.to_vector<int64_t>();
  return std::count_if(t.begin(), t.end(), [](int64_t v) { return v != -100; });
}

TEST(ShardBatch, RowsAreDealtInNearlyEqualContiguousRanges) {
  const Batch g = rows_batch(5, 4);
  for (int64_t ranks : {1, 2, 3, 5, 7}) {
    SCOPED_TRACE(ranks);
    std::vector<int64_t> ids;
    int64_t position = 0, total_scored = 0;
    for (int64_t r = 0; r < ranks; ++r) {
      const Batch s = shard_batch(g, r, ranks);
      const int64_t rows = s.ids.size(0);
      EXPECT_EQ(rows, 5 / ranks + (r < 5 % ranks ? 1 : 0));
      EXPECT_EQ(s.ids.size(1), 4);
      EXPECT_EQ(s.global_position, position);
      EXPECT_EQ(s.global_scored, scored(g.targets));
      EXPECT_EQ(s.index, 7);
      EXPECT_FALSE(s.cu_seqlens.defined());
      position += s.ids.numel();
      total_scored += scored(s.targets);
      const std::vector<int64_t> part = s.ids.to_vector<int64_t>();
      ids.insert(ids.end(), part.begin(), part.end());
    }
    EXPECT_EQ(ids, g.ids.to_vector<int64_t>());
    EXPECT_EQ(total_scored, scored(g.targets));
  }
}

TEST(ShardBatch, PackedSequencesAreCutAtTheirBoundaries) {
  // Five sequences of lengths 2, 6, 3, 1, 4 packed into [1, 16].
  const std::vector<int64_t> cu{0, 2, 8, 11, 12, 16};
  Batch g = rows_batch(1, 16);
  g.cu_seqlens = from_vector(cu, {6});
  for (int64_t ranks : {1, 2, 3, 4, 6}) {
    SCOPED_TRACE(ranks);
    std::vector<int64_t> ids, boundaries{0};
    for (int64_t r = 0; r < ranks; ++r) {
      const Batch s = shard_batch(g, r, ranks);
      ASSERT_TRUE(s.cu_seqlens.defined());
      const std::vector<int64_t> local = s.cu_seqlens.to_vector<int64_t>();
      EXPECT_EQ(local.front(), 0);
      EXPECT_EQ(local.back(), s.ids.size(1));
      EXPECT_EQ(s.global_position, boundaries.back());
      for (size_t k = 1; k < local.size(); ++k) boundaries.push_back(s.global_position + local[k]);
      const std::vector<int64_t> part = s.ids.to_vector<int64_t>();
      ids.insert(ids.end(), part.begin(), part.end());
    }
    EXPECT_EQ(ids, g.ids.to_vector<int64_t>());
    EXPECT_EQ(boundaries, cu);  // every sequence whole, on exactly one rank
  }
  // Two ranks: the boundary nearest to 8 tokens each.
  EXPECT_EQ(shard_batch(g, 0, 2).ids.size(1), 8);
}

TEST(ShardBatch, RejectsABadRank) {
  const Batch g = rows_batch(2, 2);
  EXPECT_THROW(shard_batch(g, 2, 2), ValueError);
  EXPECT_THROW(shard_batch(g, 0, 0), ValueError);
}

}  // namespace
}  // namespace lnx::data
