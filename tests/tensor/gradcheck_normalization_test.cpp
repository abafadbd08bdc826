// Finite-difference gradient table: softmax, log_softmax, cross_entropy, l2_normalize,
// rms_norm (odd shapes, several axes, strided inputs).
#include "gradcheck.h"

namespace lnx {
namespace {

// Logits (standard normal, f64) of shape `logits` plus integer targets given as values.
std::function<TensorList(Generator&)> logits_and_targets(Shape logits, std::vector<int64_t> targets, Shape target_shape,
                                                         DType target_dtype) {
  return [=](Generator& g) {
    Tensor t = target_dtype == DType::i64
                   ? from_vector<int64_t>(targets, target_shape)
                   : from_vector<int32_t>(std::vector<int32_t>(targets.begin(), targets.end()), target_shape);
    return TensorList{mul(randn(logits, g, DType::f64), 2.0), t};
  };
}

std::vector<GradCase> normalization_cases() {
  return {
      {"softmax_last", {{3, 7}}, [](const TensorList& x) { return softmax(mul(x[0], 2.0)); }},
      {"softmax_last_3d", {{2, 3, 5}}, [](const TensorList& x) { return softmax(x[0], -1); }},
      {"softmax_axis0", {{5, 3, 2}}, [](const TensorList& x) { return softmax(x[0], 0); }},
      {"softmax_axis_middle", {{2, 5, 3}}, [](const TensorList& x) { return softmax(x[0], 1); }},
      {"softmax_of_transposed_view", {{6, 3}}, [](const TensorList& x) { return softmax(transpose(x[0], 0, 1)); }},
      {"softmax_single_class", {{4, 1}}, [](const TensorList& x) { return softmax(x[0]); }},
      {"log_softmax_last", {{4, 9}}, [](const TensorList& x) { return log_softmax(mul(x[0], 3.0)); }},
      {"log_softmax_axis0", {{6, 3}}, [](const TensorList& x) { return log_softmax(x[0], 0); }},
      {"log_softmax_chained", {{3, 5}}, [](const TensorList& x) { return mul(log_softmax(x[0]), softmax(x[0])); }},
      {"cross_entropy_i64_with_ignored",
       {},
       [](const TensorList& x) { return cross_entropy(x[0], x[1]); },
       logits_and_targets({5, 7}, {3, -100, 0, 6, 2}, {5}, DType::i64)},
      {"cross_entropy_i32_3d_custom_ignore",
       {},
       [](const TensorList& x) { return cross_entropy(x[0], x[1], 1); },
       logits_and_targets({2, 3, 5}, {0, 1, 4, 2, 1, 3}, {2, 3}, DType::i32)},
      {"cross_entropy_single_row",
       {},
       [](const TensorList& x) { return cross_entropy(x[0], x[1]); },
       logits_and_targets({11}, {10}, {}, DType::i64)},
      {"cross_entropy_all_ignored",
       {},
       [](const TensorList& x) { return cross_entropy(x[0], x[1]); },
       logits_and_targets({3, 4}, {-100, -100, -100}, {3}, DType::i64)},
      {"cross_entropy_of_transposed_view",
       {},
       [](const TensorList& x) { return cross_entropy(transpose(x[0], 0, 1), x[1]); },
       logits_and_targets({6, 4}, {5, 0, 2, 3}, {4}, DType::i64)},
      {"l2_normalize_last", {{3, 5}}, [](const TensorList& x) { return l2_normalize(x[0]); }},
      {"l2_normalize_axis0", {{4, 3}}, [](const TensorList& x) { return l2_normalize(x[0], 0, 1e-3); }},
      {"rms_norm_weight", {{3, 7}, {7}}, [](const TensorList& x) { return rms_norm(x[0], x[1]); }},
      {"rms_norm_weight_3d_large_eps", {{2, 3, 5}, {5}}, [](const TensorList& x) { return rms_norm(x[0], x[1], 0.5); }},
      {"rms_norm_no_weight", {{2, 3, 5}}, [](const TensorList& x) { return rms_norm(x[0], Tensor()); }},
      {"rms_norm_of_transposed_view",
       {{5, 3}, {5}},
       [](const TensorList& x) { return rms_norm(transpose(x[0], 0, 1), x[1]); }},
      {"rms_norm_input_reused",
       {{3, 4}},
       // The input is also the weight (one of its rows) and multiplies the result.
       [](const TensorList& x) { return mul(rms_norm(x[0], select(x[0], 0, 1)), x[0]); }},
  };
}

INSTANTIATE_TEST_SUITE_P(Normalization, GradCheck, ::testing::ValuesIn(normalization_cases()), case_name);

}  // namespace
}  // namespace lnx
