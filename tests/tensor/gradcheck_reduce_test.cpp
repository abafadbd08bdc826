// Finite-difference gradient table: reductions, scans and views.
#include "gradcheck.h"

namespace lnx {
namespace {

std::vector<GradCase> reduce_cases() {
  return {
      {"sum_all", {{3, 4, 5}}, [](const TensorList& x) { return sum(x[0]); }},
      {"sum_axis0", {{3, 4, 5}}, [](const TensorList& x) { return sum(x[0], {0}); }},
      {"sum_axis_middle_keepdim", {{3, 4, 5}}, [](const TensorList& x) { return sum(x[0], {1}, true); }},
      {"sum_axes_nonadjacent",
       {{3, 4, 5}},
       [](const TensorList& x) {
         return sum(x[0], {0, 2});
       }},
      {"sum_last", {{3, 4, 5}}, [](const TensorList& x) { return sum(x[0], {-1}); }},
      {"mean_axes",
       {{3, 4, 5}},
       [](const TensorList& x) {
         return mean(x[0], {1, 2});
       }},
      {"max_last", {{3, 7}}, [](const TensorList& x) { return max(x[0], {-1}); }},
      {"max_axis0_keepdim", {{4, 3, 2}}, [](const TensorList& x) { return max(x[0], {0}, true); }},
      {"max_nonadjacent",
       {{4, 3, 2}},
       [](const TensorList& x) {
         return max(x[0], {0, 2});
       }},
      {"max_all", {{4, 3}}, [](const TensorList& x) { return max(x[0]); }},
      {"logsumexp_last", {{3, 6}}, [](const TensorList& x) { return logsumexp(mul(x[0], 4.0), {-1}); }},
      {"logsumexp_axes_keepdim",
       {{3, 4, 2}},
       [](const TensorList& x) {
         return logsumexp(x[0], {0, 2}, true);
       }},
      {"cumsum_axis1", {{3, 5, 2}}, [](const TensorList& x) { return cumsum(x[0], 1); }},
      {"cumsum_reverse_last", {{3, 5}}, [](const TensorList& x) { return cumsum(x[0], -1, true); }},
  };
}

std::vector<GradCase> view_cases() {
  return {
      {"reshape",
       {{3, 4}},
       [](const TensorList& x) {
         return reshape(x[0], {2, -1, 3});
       }},
      {"reshape_of_transposed", {{3, 4}}, [](const TensorList& x) { return reshape(transpose(x[0], 0, 1), {12}); }},
      {"flatten", {{2, 3, 4}}, [](const TensorList& x) { return flatten(x[0], 1); }},
      {"permute",
       {{2, 3, 4}},
       [](const TensorList& x) {
         return mul(permute(x[0], {2, 0, 1}), arange(3, DType::f64));
       }},
      {"transpose", {{2, 3, 4}}, [](const TensorList& x) { return transpose(x[0], 0, 2); }},
      {"slice_step", {{7, 3}}, [](const TensorList& x) { return slice(x[0], 0, 1, 7, 2); }},
      {"slice_negative", {{3, 7}}, [](const TensorList& x) { return slice(x[0], -1, -4, -1); }},
      {"select", {{3, 4}}, [](const TensorList& x) { return select(x[0], 1, -2); }},
      {"expand",
       {{3, 1}},
       [](const TensorList& x) {
         return mul(expand(x[0], {2, 3, 4}), arange(4, DType::f64));
       }},
      {"squeeze_unsqueeze", {{3, 1, 4}}, [](const TensorList& x) { return unsqueeze(squeeze(x[0], 1), 0); }},
      {"contiguous_clone", {{3, 4}}, [](const TensorList& x) { return clone(contiguous(transpose(x[0], 0, 1))); }},
      {"to_dtype_roundtrip",
       {{3, 4}},
       [](const TensorList& x) { return to_dtype(to_dtype(x[0], DType::f32), DType::f64); },
       nullptr,
       1e-3,
       1e-4,
       1e-5},
      {"sum_to",
       {{2, 3, 4}},
       [](const TensorList& x) {
         return sum_to(x[0], {3, 1});
       }},
  };
}

INSTANTIATE_TEST_SUITE_P(Reduce, GradCheck, ::testing::ValuesIn(reduce_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Views, GradCheck, ::testing::ValuesIn(view_cases()), case_name);

}  // namespace
}  // namespace lnx
