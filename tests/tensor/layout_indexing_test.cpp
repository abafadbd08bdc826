// Forward values of the layout ops (concat, split, pad, tril, triu) and the indexing ops
// (index_select, gather, embedding, one_hot) against hand-computed expectations; scatter-add
// backwards on sizes big enough to run in parallel, against naive loops; bad inputs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "numeric.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

#define EXPECT_ERROR(stmt, Type, substr)                                    \
  do {                                                                      \
    std::string msg_ = error_of<Type>([&] { (void)(stmt); });               \
    EXPECT_NE(msg_.find(substr), std::string::npos) << "message: " << msg_; \
  } while (0)

// Checks t's shape and every element (row-major) against expected.
void expect_values(const Tensor& t, const Shape& shape, const std::vector<double>& expected) {
  ASSERT_EQ(t.shape(), shape);
  auto v = t.to_vector<double>();
  ASSERT_EQ(v.size(), expected.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], expected[i]) << "element " << i;
}

Tensor iota(const Shape& shape, DType dt = DType::f32) { return reshape(arange(numel_of(shape), dt), shape); }

// ---- concat ----

TEST(LayoutOps, ConcatAxis0And1) {
  Tensor a = iota({2, 2});             // 0 1 / 2 3
  Tensor b = add(iota({1, 2}), 10.0);  // 10 11
  expect_values(concat({a, b}, 0), {3, 2}, {0, 1, 2, 3, 10, 11});
  Tensor c = add(iota({2, 3}), 20.0);  // 20 21 22 / 23 24 25
  expect_values(concat({a, c}, 1), {2, 5}, {0, 1, 20, 21, 22, 2, 3, 23, 24, 25});
  expect_values(concat({c, a}, -1), {2, 5}, {20, 21, 22, 0, 1, 23, 24, 25, 2, 3});
}

TEST(LayoutOps, ConcatEmptyPiecesStridedInputsAndIntegers) {
  Tensor a = iota({2, 3});  // 0 1 2 / 3 4 5
  Tensor e = zeros({2, 0});
  Tensor t = transpose(iota({2, 2}), 0, 1);  // 0 2 / 1 3 (strided)
  expect_values(concat({e, a, e, t}, 1), {2, 5}, {0, 1, 2, 0, 2, 3, 4, 5, 1, 3});
  Tensor out = concat({iota({2}, DType::i64), iota({3}, DType::i64)}, 0);
  EXPECT_EQ(out.dtype(), DType::i64);
  expect_values(out, {5}, {0, 1, 0, 1, 2});
  // The result is a fresh tensor, not a view of an input.
  EXPECT_FALSE(concat({a}, 0).shares_storage(a));
}

TEST(LayoutOps, ConcatBadInputs) {
  Tensor a = zeros({2, 3});
  EXPECT_THROW(concat({a, zeros({2, 4})}, 0), ShapeError);
  EXPECT_ERROR(concat({a, zeros({2, 4})}, 0), ShapeError, "[concat]");
  EXPECT_ERROR(concat({a, zeros({2, 4})}, 0), ShapeError, "[2,4]");
  EXPECT_THROW(concat({a, zeros({2, 3, 1})}, 0), ShapeError);
  EXPECT_THROW(concat({a, zeros({2, 3}, DType::f64)}, 0), DTypeError);
  EXPECT_ERROR(concat({a, zeros({2, 3}, DType::f64)}, 0), DTypeError, "[concat]");
  EXPECT_THROW(concat({}, 0), ValueError);
  EXPECT_THROW(concat({a}, 2), ShapeError);
  EXPECT_THROW(concat({scalar_tensor(1.0)}, 0), ShapeError);
}

// ---- split ----

TEST(LayoutOps, SplitValuesAndViews) {
  Tensor x = iota({2, 5});  // 0 1 2 3 4 / 5 6 7 8 9
  TensorList p = split(x, {2, 0, 3}, 1);
  ASSERT_EQ(p.size(), 3u);
  expect_values(p[0], {2, 2}, {0, 1, 5, 6});
  expect_values(p[1], {2, 0}, {});
  expect_values(p[2], {2, 3}, {2, 3, 4, 7, 8, 9});
  for (const Tensor& t : p) EXPECT_TRUE(t.shares_storage(x));
  // A write through x is seen by the view.
  x.set({1, 3}, 100.0);
  EXPECT_EQ(p[2].at({1, 1}), 100.0);
  TensorList q = split(x, {1, 1}, 0);
  expect_values(q[1], {1, 5}, {5, 6, 7, 100, 9});
}

TEST(LayoutOps, SplitGradientsReachEachPiece) {
  Tensor x = iota({6}, DType::f64);
  x.set_requires_grad();
  TensorList p = split(x, {2, 3, 1}, 0);
  // Piece 1 is unused: its part of the gradient must be zero.
  Tensor loss = add(sum(mul(p[0], 2.0)), sum(mul(p[2], 5.0)));
  loss.backward();
  expect_values(x.grad(), {6}, {2, 2, 0, 0, 0, 5});
}

TEST(LayoutOps, SplitBadInputs) {
  Tensor x = zeros({2, 5});
  EXPECT_THROW(split(x, {2, 2}, 1), ValueError);
  EXPECT_ERROR(split(x, {2, 2}, 1), ValueError, "[split]");
  EXPECT_ERROR(split(x, {2, 2}, 1), ValueError, "add up to 4");
  EXPECT_THROW(split(x, {6, -1}, 1), ValueError);
  EXPECT_THROW(split(x, {5}, 2), ShapeError);
}

// ---- pad ----

TEST(LayoutOps, PadValues) {
  Tensor x = add(iota({2, 2}), 1.0);  // 1 2 / 3 4
  expect_values(pad(x, {{1, 0}, {0, 2}}, -1.0), {3, 4},
                {-1, -1, -1, -1,  //
                 1, 2, -1, -1,    //
                 3, 4, -1, -1});
  // Only the first axis given: the second is not padded.
  expect_values(pad(x, {{0, 1}}), {3, 2}, {1, 2, 3, 4, 0, 0});
  // Strided input.
  expect_values(pad(transpose(x, 0, 1), {{0, 0}, {1, 1}}, 9.0), {2, 4}, {9, 1, 3, 9, 9, 2, 4, 9});
  // No pads: a copy.
  Tensor same = pad(x, {});
  expect_values(same, {2, 2}, {1, 2, 3, 4});
  EXPECT_FALSE(same.shares_storage(x));
}

TEST(LayoutOps, PadBadInputs) {
  Tensor x = zeros({2, 2});
  EXPECT_THROW(pad(x, {{0, -1}}), ValueError);
  EXPECT_ERROR(pad(x, {{0, -1}}), ValueError, "[pad]");
  EXPECT_THROW(pad(x, {{0, 0}, {0, 0}, {1, 1}}), ShapeError);
}

// ---- tril / triu ----

TEST(LayoutOps, TrilTriuValues) {
  Tensor x = add(iota({3, 4}), 1.0);
  // 1  2  3  4
  // 5  6  7  8
  // 9 10 11 12
  expect_values(tril(x), {3, 4}, {1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0});
  expect_values(tril(x, 1), {3, 4}, {1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12});
  expect_values(tril(x, -1), {3, 4}, {0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});
  expect_values(triu(x), {3, 4}, {1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12});
  expect_values(triu(x, 1), {3, 4}, {0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12});
  expect_values(triu(x, -1), {3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12});
  expect_values(tril(x, 10), {3, 4}, x.to_vector<double>());
  expect_values(triu(x, 10), {3, 4}, std::vector<double>(12, 0.0));
  expect_values(tril(x, -10), {3, 4}, std::vector<double>(12, 0.0));
}

TEST(LayoutOps, TrilBatchedAndStrided) {
  Tensor x = add(iota({2, 2, 2}, DType::i64), 1);  // [[1 2][3 4]], [[5 6][7 8]]
  expect_values(tril(x), {2, 2, 2}, {1, 0, 3, 4, 5, 0, 7, 8});
  // The transposed batch: [[1 3][2 4]], [[5 7][6 8]].
  expect_values(triu(transpose(x, 1, 2)), {2, 2, 2}, {1, 3, 0, 4, 5, 7, 0, 8});
  EXPECT_THROW(tril(zeros({3})), ShapeError);
  EXPECT_ERROR(triu(zeros({3})), ShapeError, "[triu]");
}

// ---- index_select ----

TEST(IndexingOps, IndexSelectValues) {
  Tensor x = iota({3, 4});  // 0..3 / 4..7 / 8..11
  Tensor rows = from_list({2, 0, 2}, {3}, DType::i64);
  expect_values(index_select(x, 0, rows), {3, 4}, {8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  Tensor cols = from_list({3, 1}, {2}, DType::i32);
  expect_values(index_select(x, -1, cols), {3, 2}, {3, 1, 7, 5, 11, 9});
  expect_values(index_select(transpose(x, 0, 1), 0, cols), {2, 3}, {3, 7, 11, 1, 5, 9});
  expect_values(index_select(x, 0, zeros({0}, DType::i64)), {0, 4}, {});
}

TEST(IndexingOps, IndexSelectBadInputs) {
  Tensor x = zeros({3, 4});
  EXPECT_THROW(index_select(x, 0, from_list({0, 3}, {2}, DType::i64)), ValueError);
  EXPECT_ERROR(index_select(x, 0, from_list({0, 3}, {2}, DType::i64)), ValueError,
               "[index_select] index 3 at position 1");
  EXPECT_ERROR(index_select(x, 1, from_list({-1}, {1}, DType::i64)), ValueError, "index -1");
  EXPECT_THROW(index_select(x, 0, from_list({0}, {1}, DType::f32)), DTypeError);
  EXPECT_THROW(index_select(x, 0, from_list({0, 1}, {1, 2}, DType::i64)), ShapeError);
}

// ---- gather ----

TEST(IndexingOps, GatherValues) {
  Tensor x = iota({3, 4});  // 0..3 / 4..7 / 8..11
  // Axis 1: out[i][j] = x[i][idx[i][j]].
  Tensor i1 = from_list({3, 0, 1, 1, 2, 2}, {3, 2}, DType::i64);
  expect_values(gather(x, 1, i1), {3, 2}, {3, 0, 5, 5, 10, 10});
  // Axis 0 with fewer columns than x: out[i][j] = x[idx[i][j]][j].
  Tensor i0 = from_list({2, 0, 1, 1, 0, 2}, {2, 3}, DType::i32);
  expect_values(gather(x, 0, i0), {2, 3}, {8, 1, 6, 4, 1, 10});
  // Strided input: xt = x^T is [4, 3], xt[i][j] = x[j][i].
  Tensor it = from_list({2, 0, 1, 1}, {2, 2}, DType::i64);
  expect_values(gather(transpose(x, 0, 1), 1, it), {2, 2}, {8, 0, 5, 5});
}

TEST(IndexingOps, GatherBadInputs) {
  Tensor x = zeros({3, 4});
  EXPECT_THROW(gather(x, 1, from_list({0, 4}, {1, 2}, DType::i64)), ValueError);
  EXPECT_ERROR(gather(x, 1, from_list({0, 4}, {1, 2}, DType::i64)), ValueError, "[gather] index 4 at position [0,1]");
  EXPECT_THROW(gather(x, 1, from_list({0, 1}, {2}, DType::i64)), ShapeError);
  EXPECT_THROW(gather(x, 1, zeros({4, 1}, DType::i64)), ShapeError);  // dim 0: 4 > 3
  EXPECT_ERROR(gather(x, 1, zeros({4, 1}, DType::i64)), ShapeError, "[gather]");
}

// ---- embedding ----

TEST(IndexingOps, EmbeddingValues) {
  Tensor w = iota({4, 3});  // row v = 3v, 3v+1, 3v+2
  Tensor ids = from_list({3, 0, 3, 1}, {2, 2}, DType::i64);
  expect_values(embedding(w, ids), {2, 2, 3}, {9, 10, 11, 0, 1, 2, 9, 10, 11, 3, 4, 5});
  expect_values(embedding(w, from_list({2}, {1}, DType::i32)), {1, 3}, {6, 7, 8});
  expect_values(embedding(transpose(iota({3, 4}), 0, 1), from_list({1}, {1}, DType::i64)), {1, 3}, {1, 5, 9});
}

TEST(IndexingOps, EmbeddingBadInputs) {
  Tensor w = zeros({50257, 2});
  Tensor ids = from_list({1, 2, 3, 4, 5, 70000}, {6}, DType::i64);
  EXPECT_THROW(embedding(w, ids), ValueError);
  EXPECT_EQ(error_of<ValueError>([&] { embedding(w, ids); }),
            "[embedding] id 70000 at position 5 is out of range for a vocabulary of 50257");
  EXPECT_ERROR(embedding(w, from_list({0, -2}, {1, 2}, DType::i32)), ValueError, "id -2 at position [0,1]");
  EXPECT_THROW(embedding(zeros({4}), from_list({0}, {1}, DType::i64)), ShapeError);
  EXPECT_THROW(embedding(w, from_list({0}, {1}, DType::f32)), DTypeError);
}

// ---- one_hot ----

TEST(IndexingOps, OneHotValues) {
  Tensor ids = from_list({2, 0, 3, 2}, {2, 2}, DType::i64);
  Tensor y = one_hot(ids, 4);
  EXPECT_EQ(y.dtype(), DType::f32);
  expect_values(y, {2, 2, 4}, {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0});
  Tensor yi = one_hot(from_list({1}, {1}, DType::i32), 2, DType::i64);
  EXPECT_EQ(yi.dtype(), DType::i64);
  expect_values(yi, {1, 2}, {0, 1});
  EXPECT_THROW(one_hot(ids, 3), ValueError);
  EXPECT_ERROR(one_hot(ids, 3), ValueError, "[one_hot] id 3 at position [1,0]");
  EXPECT_THROW(one_hot(ids, 0), ValueError);
  EXPECT_THROW(one_hot(zeros({2}), 3), DTypeError);
}

// ---- scatter-add backwards at sizes that use the parallel paths ----

TEST(IndexingOps, EmbeddingBackwardAccumulatesRepeatedIds) {
  Generator gen(7);
  for (int64_t D : {4, 96}) {  // narrow rows (vocabulary ranges) and wide rows (columns)
    const int64_t V = 37, n = 12000;
    Tensor w = randn({V, D}, gen, DType::f64);
    w.set_requires_grad();
    Tensor ids = randint({n}, 0, V, gen, DType::i64);
    Tensor g = randn({n, D}, gen, DType::f64);
    Tensor y = embedding(w, ids);
    y.backward(g);
    std::vector<double> expected(V * D, 0.0);
    auto iv = ids.to_vector<int64_t>();
    auto gv = g.to_vector<double>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < D; ++d) expected[iv[i] * D + d] += gv[i * D + d];
    EXPECT_TRUE(all_close(w.grad(), from_vector(expected, {V, D}), 1e-12)) << "D = " << D;
  }
}

TEST(IndexingOps, IndexSelectAndGatherBackwardAccumulate) {
  Generator gen(11);
  {
    // index_select on axis 1 of [1, N, C]: one outer row, so threads split columns.
    const int64_t N = 9, M = 300, C = 130;
    Tensor x = randn({1, N, C}, gen, DType::f64);
    x.set_requires_grad();
    Tensor idx = randint({M}, 0, N, gen, DType::i32);
    Tensor g = randn({1, M, C}, gen, DType::f64);
    index_select(x, 1, idx).backward(g);
    std::vector<double> expected(N * C, 0.0);
    auto iv = idx.to_vector<int32_t>();
    auto gv = g.to_vector<double>();
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c = 0; c < C; ++c) expected[iv[m] * C + c] += gv[m * C + c];
    EXPECT_TRUE(all_close(x.grad(), from_vector(expected, {1, N, C}), 1e-12));
  }
  {
    // gather on axis 0 of [R, C] with a taller index: repeated rows per column.
    const int64_t R = 7, C = 200, M = 210;
    Tensor x = randn({R, C}, gen, DType::f64);
    x.set_requires_grad();
    Tensor idx = randint({M, C}, 0, R, gen, DType::i64);
    Tensor g = randn({M, C}, gen, DType::f64);
    gather(x, 0, idx).backward(g);
    std::vector<double> expected(R * C, 0.0);
    auto iv = idx.to_vector<int64_t>();
    auto gv = g.to_vector<double>();
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c = 0; c < C; ++c) expected[iv[m * C + c] * C + c] += gv[m * C + c];
    EXPECT_TRUE(all_close(x.grad(), from_vector(expected, {R, C}), 1e-12));
  }
}

}  // namespace
}  // namespace lnx
