// Finite-difference gradient table: index_select, gather, embedding (repeated indices must
// accumulate their gradients).
#include "gradcheck.h"

namespace lnx {
namespace {

// A random f64 input of shape x followed by a fixed integer tensor.
std::function<TensorList(Generator&)> with_index(Shape x, std::vector<double> index, Shape index_shape, DType dt) {
  return [=](Generator& g) {
    return TensorList{randn(x, g, DType::f64), from_vector<double>(index, index_shape).to(dt)};
  };
}

std::vector<GradCase> indexing_cases() {
  return {
      {"index_select_axis0_repeated",
       {},
       [](const TensorList& x) { return index_select(x[0], 0, x[1]); },
       with_index({4, 3}, {2, 0, 2, 3, 2}, {5}, DType::i64)},
      {"index_select_axis1_i32",
       {},
       [](const TensorList& x) { return index_select(x[0], 1, x[1]); },
       with_index({2, 5, 3}, {4, 1, 1, 0}, {4}, DType::i32)},
      {"index_select_last_axis",
       {},
       [](const TensorList& x) { return index_select(x[0], -1, x[1]); },
       with_index({3, 4}, {3, 3, 0}, {3}, DType::i64)},
      {"index_select_transposed_input",
       {},
       [](const TensorList& x) { return index_select(transpose(x[0], 0, 1), 0, x[1]); },
       with_index({3, 4}, {1, 3, 1}, {3}, DType::i64)},
      {"gather_axis0",
       {},
       [](const TensorList& x) { return gather(x[0], 0, x[1]); },
       with_index({3, 4}, {2, 0, 1, 2, 0, 0, 2, 1}, {2, 4}, DType::i64)},
      {"gather_axis1_smaller_index",
       {},
       [](const TensorList& x) { return gather(x[0], 1, x[1]); },
       with_index({3, 4}, {3, 3, 0, 1, 1, 1, 2, 0, 3, 3}, {2, 5}, DType::i32)},
      {"gather_3d_middle_axis",
       {},
       [](const TensorList& x) { return gather(x[0], 1, x[1]); },
       with_index({2, 3, 4}, {0, 2, 2, 1, 1, 1, 0, 2, 2, 0, 1, 1}, {2, 2, 3}, DType::i64)},
      {"gather_transposed_input",
       {},
       [](const TensorList& x) { return gather(transpose(x[0], 0, 1), 1, x[1]); },
       with_index({3, 4}, {0, 2, 2, 1, 1, 1, 0, 0}, {4, 2}, DType::i64)},
      {"embedding_repeated_ids",
       {},
       [](const TensorList& x) { return embedding(x[0], x[1]); },
       with_index({5, 3}, {1, 4, 1, 0, 1, 4}, {2, 3}, DType::i64)},
      {"embedding_i32_ids_1d",
       {},
       [](const TensorList& x) { return embedding(x[0], x[1]); },
       with_index({6, 4}, {5, 5, 2, 0, 5}, {5}, DType::i32)},
  };
}

INSTANTIATE_TEST_SUITE_P(Indexing, GradCheck, ::testing::ValuesIn(indexing_cases()), case_name);

}  // namespace
}  // namespace lnx
