// Generation with packed weights (LMModel::set_weight_format): logits close to f32's by each
// format's rounding, decoding token by token equal to the chunked forward with the same
// weights, batched decoding equal to one sequence at a time, and training refused.
#include <gtest/gtest.h>

#include "generate/session.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "numeric.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace lnx::generate {
namespace {

std::vector<int32_t> tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Generator gen(seed);
  const std::vector<int64_t> v = randint({n}, 0, vocab, gen, DType::i64).to_vector<int64_t>();
  return std::vector<int32_t>(v.begin(), v.end());
}

Tensor ids_of(const std::vector<int32_t>& t) {
  return from_vector(std::vector<int64_t>(t.begin(), t.end()), {1, static_cast<int64_t>(t.size())});
}

class PackedWeights : public ::testing::TestWithParam<std::string> {};

TEST_P(PackedWeights, LogitsFollowTheFormatsRounding) {
  models::LMModel model(models::preset_config(GetParam()), 3);
  const std::vector<int32_t> t = tokens(70, model.config().vocab_size, 4);
  NoGradGuard no_grad;
  const Tensor f32 = model.forward(ids_of(t)).logits;
  const int64_t f32_bytes = model.weight_bytes_per_token();
  for (const auto& [format, tol] : {std::pair{WeightFormat::bf16, 2e-2}, std::pair{WeightFormat::int8, 4e-2}}) {
    model.set_weight_format(format);
    EXPECT_EQ(model.weight_format(), format);
    const Tensor packed = model.forward(ids_of(t)).logits;
    const double err = rel_rms_error(packed, f32);
    EXPECT_LT(err, tol) << weight_format_name(format);
    EXPECT_GT(err, 1e-6) << weight_format_name(format) << ": the packed weights were not used";
    EXPECT_LT(model.weight_bytes_per_token(), f32_bytes * (format == WeightFormat::bf16 ? 0.55 : 0.3));

    // Token by token (recurrent forms, one-row products) against the chunked call.
    Session s(model);
    Tensor last = s.prefill({t[0]});
    for (size_t i = 1; i < t.size(); ++i) last = s.step(t[i]);
    EXPECT_LT(rel_rms_error(reshape(last, {-1}), reshape(slice(packed, 1, 69, 70), {-1})), 1e-4);

    // Two sequences decoded together (two-row products) equal each alone.
    Session both(model, 2);
    both.prefill_batch({{t[0], t[1]}, {t[2]}});
    const Tensor together = both.step_batch({t[3], t[4]});  // [2, V]
    Session first(model), second(model);
    first.prefill({t[0], t[1]});
    second.prefill({t[2]});
    EXPECT_LT(rel_rms_error(slice(together, 0, 0, 1), reshape(first.step(t[3]), {1, -1})), 1e-5);
    EXPECT_LT(rel_rms_error(slice(together, 0, 1, 2), reshape(second.step(t[4]), {1, -1})), 1e-5);
  }
  model.set_weight_format(WeightFormat::f32);
  EXPECT_LT(rel_rms_error(model.forward(ids_of(t)).logits, f32), 1e-12);
}

TEST_P(PackedWeights, TrainingWithPackedWeightsIsAnError) {
  models::LMModel model(models::preset_config(GetParam()), 3);
  model.set_weight_format(WeightFormat::int8);
  const Tensor ids = ids_of(tokens(8, model.config().vocab_size, 5));
  EXPECT_THROW(model.loss(ids, ids), AutogradError);
}

TEST_P(PackedWeights, AStateContinuesOnlyUnderTheWeightsThatMadeIt) {
  models::LMModel model(models::preset_config(GetParam()), 3);
  model.set_weight_format(WeightFormat::int8);
  Session s(model);
  s.prefill(tokens(5, model.config().vocab_size, 6));
  const std::string path = ::testing::TempDir() + "lnx_packed_state_" + GetParam() + ".safetensors";
  s.save(path);
  EXPECT_NO_THROW(Session::load(model, path));
  model.set_weight_format(WeightFormat::f32);
  const std::string error = error_of<ValueError>([&] { Session::load(model, path); });
  EXPECT_NE(error.find("--weights format"), std::string::npos) << error;
}

INSTANTIATE_TEST_SUITE_P(Presets, PackedWeights,
                         ::testing::Values("hybrid-tiny", "mamba2-tiny", "gla-tiny", "deltanet-tiny", "kda-tiny"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace lnx::generate
