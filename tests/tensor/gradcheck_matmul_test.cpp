// Finite-difference gradient table: matmul (2-d, batched, broadcast batch dims, 1-d operands,
// transposed and strided views, degenerate dims).
#include "gradcheck.h"

namespace lnx {
namespace {

Tensor mm(const TensorList& x) { return matmul(x[0], x[1]); }

std::vector<GradCase> matmul_cases() {
  return {
      {"mm_2d", {{3, 4}, {4, 5}}, mm},
      {"mm_batched", {{2, 3, 4}, {2, 4, 5}}, mm},
      {"mm_broadcast_batch", {{2, 1, 3, 4}, {5, 4, 2}}, mm},
      {"mm_shared_b", {{2, 3, 4}, {4, 5}}, mm},  // one GEMM over all rows
      {"mm_shared_b_size1_batch", {{3, 2, 4}, {1, 4, 3}}, mm},
      {"mm_shared_a", {{3, 4}, {2, 4, 5}}, mm},
      {"mm_rows_of_one", {{3, 1, 4}, {4, 2}}, mm},  // M = 1 batch folded into rows
      {"mm_inner_one", {{3, 1}, {1, 4}}, mm},
      {"mm_vec_mat", {{4}, {4, 3}}, mm},
      {"mm_mat_vec", {{3, 4}, {4}}, mm},
      {"mm_vec_vec", {{5}, {5}}, mm},
      {"mm_batched_mat_vec", {{2, 3, 4}, {4}}, mm},
      {"mm_vec_batched_mat", {{4}, {2, 4, 3}}, mm},
      {"mm_transposed_views",
       {{4, 3}, {5, 4}},
       [](const TensorList& x) { return matmul(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); }},
      {"mm_batched_transposed_a",
       {{2, 4, 3}, {2, 4, 5}},
       [](const TensorList& x) { return matmul(transpose(x[0], -1, -2), x[1]); }},
      {"mm_permuted_batch",
       {{3, 2, 4}, {2, 4, 3}},
       [](const TensorList& x) {
         return matmul(permute(x[0], {1, 0, 2}), x[1]);
       }},
      {"mm_column_slice_leading_dim",
       {{3, 6}, {4, 2}},
       [](const TensorList& x) { return matmul(slice(x[0], 1, 1, 5), x[1]); }},
      {"mm_strided_copy", {{3, 8}, {4, 2}}, [](const TensorList& x) { return matmul(slice(x[0], 1, 0, 8, 2), x[1]); }},
      {"mm_expanded_operand",
       {{3, 4}, {4, 2}},
       [](const TensorList& x) {
         return matmul(expand(x[0], {2, 3, 4}), x[1]);
       }},
      {"mm_same_input_twice", {{4, 4}}, [](const TensorList& x) { return matmul(x[0], transpose(x[0], 0, 1)); }},
  };
}

INSTANTIATE_TEST_SUITE_P(Matmul, GradCheck, ::testing::ValuesIn(matmul_cases()), case_name);

}  // namespace
}  // namespace lnx
