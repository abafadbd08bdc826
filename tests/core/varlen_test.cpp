// Variable-length helpers (core/varlen.h): mask → packing, pack/unpack round trips and their
// gradients, cu_seqlens conversions and bad inputs; and mode selection (core/mode.h).
#include <gtest/gtest.h>

#include "core/mode.h"
#include "core/varlen.h"
#include "gradcheck.h"
#include "numeric.h"

namespace lnx::core {
namespace {

// Rows: three real tokens with a hole, no tokens, all tokens.
Tensor test_mask(DType dtype = DType::i64) {
  return to_dtype(from_vector<int64_t>({1, 1, 0, 1, 0,  //
                                        0, 0, 0, 0, 0,  //
                                        1, 1, 1, 1, 1},
                                       {3, 5}),
                  dtype);
}

TEST(Varlen, PackingFromMask) {
  for (DType dt : {DType::i64, DType::i32, DType::f32, DType::f64}) {
    const Packing p = packing_from_mask(test_mask(dt));
    EXPECT_EQ(p.B, 3);
    EXPECT_EQ(p.T, 5);
    EXPECT_EQ(p.P, 8);
    EXPECT_EQ(p.lengths, (std::vector<int64_t>{3, 0, 5}));
    EXPECT_EQ(p.cu_seqlens.to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 3, 8}));
    EXPECT_EQ(p.gather_index.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 3, 10, 11, 12, 13, 14}));
    // Padding rows point at P (the zero row unpack appends).
    EXPECT_EQ(p.scatter_index.to_vector<int64_t>(),
              (std::vector<int64_t>{0, 1, 8, 2, 8, 8, 8, 8, 8, 8, 3, 4, 5, 6, 7}));
  }
}

TEST(Varlen, PackUnpackRoundTrip) {
  Generator gen(1);
  const Packing p = packing_from_mask(test_mask());
  const Tensor x = randn({3, 5, 4}, gen, DType::f64);
  const Tensor packed = pack(x, p);
  EXPECT_EQ(packed.shape(), (Shape{1, 8, 4}));
  // Packed token 2 is x[0, 3]; packed token 3 is x[2, 0].
  EXPECT_TRUE(all_close(select(packed, 1, 2), slice(select(x, 1, 3), 0, 0, 1), 0));
  EXPECT_TRUE(all_close(select(packed, 1, 3), slice(select(x, 1, 0), 0, 2, 3), 0));
  // unpack(pack(x)) is x with zeros at padding; pack(unpack(y)) is y.
  const Tensor mask3 = unsqueeze(test_mask(DType::f64), 2);
  EXPECT_TRUE(all_close(unpack(packed, p), mul(x, mask3), 0));
  const Tensor y = randn({1, 8, 2, 3}, gen, DType::f64);
  const Tensor u = unpack(y, p);
  EXPECT_EQ(u.shape(), (Shape{3, 5, 2, 3}));
  EXPECT_TRUE(all_close(pack(u, p), y, 0));
}

TEST(Varlen, GradientsThroughPackAndUnpack) {
  const Packing p = packing_from_mask(test_mask());
  const std::vector<GradCase> cases{
      {"pack", {{3, 5, 2}}, [p](const TensorList& x) { return pack(x[0], p); }},
      {"unpack", {{1, 8, 3}}, [p](const TensorList& x) { return unpack(x[0], p); }},
      {"unpack_of_pack_times_x", {{3, 5, 2}}, [p](const TensorList& x) { return mul(unpack(pack(x[0], p), p), x[0]); }},
  };
  for (const GradCase& c : cases) EXPECT_TRUE(check_gradients(c));
}

TEST(Varlen, CuSeqlensConversions) {
  EXPECT_EQ(cu_seqlens_from_lengths({2, 0, 3}).to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 2, 5}));
  EXPECT_EQ(lengths_from_cu_seqlens(from_vector<int32_t>({0, 2, 2, 5}, {4}), "op"), (std::vector<int64_t>{2, 0, 3}));
  EXPECT_TRUE(lengths_from_cu_seqlens(from_vector<int64_t>({0}, {1}), "op").empty());
  EXPECT_NE(error_of<ValueError>([] {
              cu_seqlens_from_lengths({1, -1});
            }).find("negative length -1"),
            std::string::npos);
  auto bad = [](const Tensor& cu) { return error_of<ValueError>([&] { lengths_from_cu_seqlens(cu, "my_op"); }); };
  EXPECT_NE(bad(from_vector<int64_t>({1, 3}, {2})).find("[my_op] cu_seqlens must start at 0, got 1"),
            std::string::npos);
  EXPECT_NE(bad(from_vector<int64_t>({0, 3, 1}, {3})).find("must not decrease (1 after 3)"), std::string::npos);
  EXPECT_NE(bad(from_vector<int64_t>({0, 1, 2, 3}, {2, 2})).find("1-d i32/i64 tensor"), std::string::npos);
  EXPECT_NE(bad(from_vector<double>({0, 1}, {2})).find("got f64"), std::string::npos);
}

TEST(Varlen, BadMasksAndShapes) {
  EXPECT_NE(error_of<ValueError>([] {
              packing_from_mask(from_vector<int64_t>({1, 2, 0, 1}, {2, 2}));
            }).find("mask entries must be 0 or 1, got 2 at [0, 1]"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] {
              packing_from_mask(from_vector<double>({1, 0.5}, {1, 2}));
            }).find("got 0.5"),
            std::string::npos);
  EXPECT_NE(error_of<ShapeError>([] {
              packing_from_mask(from_vector<int64_t>({1, 1}, {2}));
            }).find("mask must be [B, T], got [2]"),
            std::string::npos);
  EXPECT_NE(error_of<ShapeError>([] { packing_from_mask(Tensor()); }).find("an undefined tensor"), std::string::npos);
  const Packing p = packing_from_mask(test_mask());
  EXPECT_NE(error_of<ShapeError>([&] {
              pack(zeros({3, 4, 2}), p);
            }).find("x must be [3, 5, …] like the mask, got [3,4,2]"),
            std::string::npos);
  EXPECT_NE(error_of<ShapeError>([&] { unpack(zeros({1, 7, 2}), p); }).find("y must be [1, 8, …]"), std::string::npos);
}

TEST(Mode, NamesParseAndSelect) {
  for (Mode m : {Mode::automatic, Mode::chunk, Mode::recurrent}) EXPECT_EQ(parse_mode(mode_name(m)), m);
  EXPECT_STREQ(mode_name(Mode::automatic), "auto");
  EXPECT_NE(error_of<ValueError>([] {
              parse_mode("fast");
            }).find("unknown mode 'fast'; expected one of: auto, chunk, recurrent"),
            std::string::npos);
  EXPECT_EQ(select_mode(Mode::automatic, 1), Mode::recurrent);
  EXPECT_EQ(select_mode(Mode::automatic, kRecurrentMaxTokens), Mode::recurrent);
  EXPECT_EQ(select_mode(Mode::automatic, kRecurrentMaxTokens + 1), Mode::chunk);
  EXPECT_EQ(select_mode(Mode::chunk, 1), Mode::chunk);
  EXPECT_EQ(select_mode(Mode::recurrent, 100000), Mode::recurrent);
  // A training forward runs the chunk form whatever its length, unless told otherwise.
  EXPECT_EQ(select_mode(Mode::automatic, 1, true), Mode::chunk);
  EXPECT_EQ(select_mode(Mode::recurrent, 1, true), Mode::recurrent);
}

}  // namespace
}  // namespace lnx::core
