// Finite-difference gradient table: concat, split, pad, tril, triu.
#include "gradcheck.h"

namespace lnx {
namespace {

// Σ_i (i+1)·piece_i, each piece flattened and joined: a different weight per piece, so a
// gradient routed to the wrong piece shows up.
Tensor weighted_join(const TensorList& pieces) {
  TensorList flat;
  for (size_t i = 0; i < pieces.size(); ++i) flat.push_back(reshape(mul(pieces[i], static_cast<double>(i + 1)), {-1}));
  return concat(flat, 0);
}

std::vector<GradCase> layout_cases() {
  return {
      {"concat_axis0",
       {{2, 3}, {4, 3}, {1, 3}},
       [](const TensorList& x) {
         return concat({x[0], x[1], x[2]}, 0);
       }},
      {"concat_axis1",
       {{3, 2}, {3, 1}, {3, 4}},
       [](const TensorList& x) {
         return concat({x[0], x[1], x[2]}, 1);
       }},
      {"concat_negative_axis",
       {{2, 3, 2}, {2, 3, 3}, {2, 3, 1}},
       [](const TensorList& x) {
         return concat({x[0], x[1], x[2]}, -1);
       }},
      {"concat_with_empty_piece",
       {{2, 3}, {0, 3}, {1, 3}},
       [](const TensorList& x) {
         return concat({x[0], x[1], x[2]}, 0);
       }},
      {"concat_transposed_input",
       {{3, 2}, {2, 2}},
       [](const TensorList& x) {
         return concat({transpose(x[0], 0, 1), x[1]}, 1);
       }},
      {"concat_same_tensor_twice",
       {{2, 3}},
       [](const TensorList& x) {
         return concat({x[0], mul(x[0], 2.0), x[0]}, 1);
       }},
      {"split_axis0",
       {{6, 3}},
       [](const TensorList& x) {
         return weighted_join(split(x[0], {1, 3, 2}, 0));
       }},
      {"split_axis1_negative",
       {{2, 7, 2}},
       [](const TensorList& x) {
         return weighted_join(split(x[0], {2, 0, 4, 1}, -2));
       }},
      {"split_unused_piece",
       {{5, 2}},
       [](const TensorList& x) {
         TensorList p = split(x[0], {2, 1, 2}, 0);
         return concat({mul(p[2], 3.0), p[0]}, 0);  // piece 1 gets no gradient
       }},
      {"pad_last_axis",
       {{3, 4}},
       [](const TensorList& x) {
         return pad(x[0], {{0, 0}, {2, 1}}, 0.5);
       }},
      {"pad_several_axes_asymmetric",
       {{2, 3, 2}},
       [](const TensorList& x) {
         return pad(x[0], {{1, 0}, {0, 2}, {3, 1}}, -1.0);
       }},
      {"pad_leading_only",
       {{2, 3}},
       [](const TensorList& x) {
         return pad(x[0], {{1, 2}});
       }},
      {"pad_transposed_input",
       {{3, 2}},
       [](const TensorList& x) {
         return pad(transpose(x[0], 0, 1), {{1, 1}, {0, 2}});
       }},
      {"tril_k0", {{4, 5}}, [](const TensorList& x) { return tril(x[0]); }},
      {"tril_k1", {{4, 5}}, [](const TensorList& x) { return tril(x[0], 1); }},
      {"tril_km1_batched", {{2, 4, 3}}, [](const TensorList& x) { return tril(x[0], -1); }},
      {"triu_k0_batched", {{3, 4, 4}}, [](const TensorList& x) { return triu(x[0]); }},
      {"triu_k1", {{4, 5}}, [](const TensorList& x) { return triu(x[0], 1); }},
      {"triu_km1_batched", {{2, 5, 3}}, [](const TensorList& x) { return triu(x[0], -1); }},
      {"triu_transposed_input", {{2, 3, 4}}, [](const TensorList& x) { return triu(transpose(x[0], 1, 2), 1); }},
  };
}

INSTANTIATE_TEST_SUITE_P(Layout, GradCheck, ::testing::ValuesIn(layout_cases()), case_name);

}  // namespace
}  // namespace lnx
