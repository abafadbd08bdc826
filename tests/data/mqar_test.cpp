// MQAR: the layout Zoology defines (pairs first, keys and values from disjoint halves, each
// key queried once, the target at a query is the paired value, nothing else scored), the
// power-law gaps, determinism, config validation and YAML, and argmax accuracy on hand-made
// logits.
#include "data/mqar.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/config.h"
#include "tensor/error.h"

namespace lnx::data {
namespace {

// Checks every structural rule of one batch; returns the gaps of its queries.
std::vector<int64_t> check_layout(const MqarConfig& c, const Batch& batch) {
  const int64_t B = batch.ids.size(0), T = c.seq_len, V = c.vocab_size, P = c.num_kv_pairs, C = 2 * P;
  EXPECT_EQ(batch.ids.shape(), (Shape{B, T}));
  EXPECT_EQ(batch.targets.shape(), (Shape{B, T}));
  EXPECT_EQ(batch.mask.shape(), (Shape{B, T}));
  const auto ids = batch.ids.to_vector<int64_t>(), targets = batch.targets.to_vector<int64_t>();
  const auto mask = batch.mask.to_vector<float>();
  std::vector<int64_t> gaps;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t* x = ids.data() + b * T;
    const int64_t* y = targets.data() + b * T;
    std::map<int64_t, int64_t> value_of;
    std::set<int64_t> values;
    for (int64_t i = 0; i < P; ++i) {
      EXPECT_GE(x[2 * i], 1);
      EXPECT_LT(x[2 * i], V / 2);      // keys: first half, never token 0
      EXPECT_GE(x[2 * i + 1], V / 2);  // values: second half
      EXPECT_LT(x[2 * i + 1], V);
      EXPECT_TRUE(value_of.emplace(x[2 * i], x[2 * i + 1]).second) << "key repeated";
      EXPECT_TRUE(values.insert(x[2 * i + 1]).second) << "value repeated";
    }
    std::set<int64_t> queried;
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_GE(x[t], 0);
      EXPECT_LT(x[t], V);
      EXPECT_EQ(mask[b * T + t], y[t] == -100 ? 0.0f : 1.0f);
      if (y[t] == -100) continue;
      // A scored position is a query slot after the pairs, holding a key; its target is the
      // value paired with that very key.
      EXPECT_GE(t, C);
      EXPECT_EQ((t - C) % 2, 0);
      if (!value_of.count(x[t])) {
        ADD_FAILURE() << "scored position " << t << " does not hold a key";
        continue;
      }
      EXPECT_EQ(y[t], value_of[x[t]]);
      EXPECT_TRUE(queried.insert(x[t]).second) << "key queried twice";
      gaps.push_back((t - C) / 2);
    }
    EXPECT_EQ(static_cast<int64_t>(queried.size()), P);  // exactly num_kv_pairs queries
    for (int64_t t = 0; t < C; ++t) EXPECT_EQ(y[t], -100);
  }
  return gaps;
}

TEST(Mqar, LayoutFollowsZoology) {
  const std::vector<MqarConfig> configs = {
      MqarConfig{},  // 256 tokens, T = 64, 4 pairs
      MqarConfig{.vocab_size = 8192, .seq_len = 256, .num_kv_pairs = 64, .power_a = 0.01},  // every slot used
      MqarConfig{.vocab_size = 10, .seq_len = 16, .num_kv_pairs = 4, .power_a = 1.0},       // all keys used
      MqarConfig{.vocab_size = 1000, .seq_len = 128, .num_kv_pairs = 16, .power_a = 0.5},
  };
  for (const MqarConfig& c : configs) {
    SCOPED_TRACE(c.num_kv_pairs);
    for (int64_t index = 0; index < 5; ++index) check_layout(c, mqar_batch(c, 16, 123, index));
  }
}

TEST(Mqar, FillerIsUniformOverTheWholeVocabulary) {
  const MqarConfig c;
  const Batch batch = mqar_batch(c, 64, 5, 0);
  const auto ids = batch.ids.to_vector<int64_t>(), targets = batch.targets.to_vector<int64_t>();
  int64_t low = 0, high = 0, total = 0;
  for (int64_t b = 0; b < 64; ++b)
    for (int64_t t = 2 * c.num_kv_pairs + 1; t < c.seq_len; t += 2) {  // odd slots after the pairs: filler
      const int64_t x = ids[b * c.seq_len + t];
      EXPECT_EQ(targets[b * c.seq_len + t], -100);
      (x < c.vocab_size / 2 ? low : high) += 1;
      ++total;
    }
  // Both halves appear about equally (Zoology fills from all of [0, V)).
  EXPECT_GT(low, total * 4 / 10);
  EXPECT_GT(high, total * 4 / 10);
}

TEST(Mqar, GapsFollowThePowerLaw) {
  auto mean_and_zero = [](double power_a) {
    MqarConfig c;
    c.power_a = power_a;
    double sum = 0.0;
    int64_t n = 0, zeros = 0;
    for (int64_t index = 0; index < 40; ++index)
      for (const int64_t g : check_layout(c, mqar_batch(c, 32, 9, index))) {
        sum += static_cast<double>(g);
        zeros += g == 0;
        ++n;
      }
    return std::pair<double, double>(sum / n, static_cast<double>(zeros) / n);
  };
  const auto [skewed_mean, skewed_zero] = mean_and_zero(0.01);
  const auto [uniform_mean, uniform_zero] = mean_and_zero(1.0);
  // power_a = 1 weights every gap in [0, 28) equally: mean 13.5, P(gap 0) = 1/28 per query.
  EXPECT_NEAR(uniform_mean, 13.5, 0.8);
  EXPECT_NEAR(uniform_zero, 1.0 / 28.0, 0.015);
  // power_a = 0.01 makes short gaps much more likely (weights ~ 1/(g+1)).
  EXPECT_LT(skewed_mean, 0.8 * uniform_mean);
  EXPECT_GT(skewed_zero, 2.5 * uniform_zero);
}

TEST(Mqar, DeterministicInSeedAndIndex) {
  const MqarConfig c;
  const Batch a = mqar_batch(c, 8, 77, 3), b = mqar_batch(c, 8, 77, 3);
  EXPECT_EQ(a.index, 3);
  EXPECT_EQ(a.ids.to_vector<int64_t>(), b.ids.to_vector<int64_t>());
  EXPECT_EQ(a.targets.to_vector<int64_t>(), b.targets.to_vector<int64_t>());
  EXPECT_NE(a.ids.to_vector<int64_t>(), mqar_batch(c, 8, 77, 4).ids.to_vector<int64_t>());
  EXPECT_NE(a.ids.to_vector<int64_t>(), mqar_batch(c, 8, 78, 3).ids.to_vector<int64_t>());
  // A bigger batch only appends rows.
  const auto small = mqar_batch(c, 3, 77, 3).ids.to_vector<int64_t>();
  const auto big = a.ids.to_vector<int64_t>();
  EXPECT_EQ(small, std::vector<int64_t>(big.begin(), big.begin() + 3 * c.seq_len));
}

TEST(Mqar, ValidationAndYaml) {
  auto bad = [](auto edit) {
    MqarConfig c;
    edit(c);
    return c;
  };
  EXPECT_THROW(mqar_batch(bad([](MqarConfig& c) { c.seq_len = 63; }), 1, 0, 0), ValueError);
  EXPECT_THROW(mqar_batch(bad([](MqarConfig& c) { c.num_kv_pairs = 17; }), 1, 0, 0), ValueError);  // 4P > T
  EXPECT_THROW(mqar_batch(bad([](MqarConfig& c) { c.num_kv_pairs = 0; }), 1, 0, 0), ValueError);
  EXPECT_THROW(mqar_batch(bad([](MqarConfig& c) { c.vocab_size = 8; }), 1, 0, 0), ValueError);  // 3 keys < 4
  EXPECT_THROW(mqar_batch(bad([](MqarConfig& c) { c.power_a = 0.0; }), 1, 0, 0), ValueError);
  EXPECT_THROW(mqar_batch(MqarConfig{}, 0, 0, 0), ValueError);
  EXPECT_THROW(mqar_batch(MqarConfig{}, 1, 0, -1), ValueError);

  MqarConfig c;
  core::read_config(core::parse_yaml("vocab_size: 8192\nnum_kv_pairs: 16\npower_a: 0.5\n", "<mqar>"), c, "mqar");
  EXPECT_EQ(c.vocab_size, 8192);
  EXPECT_EQ(c.seq_len, 64);  // absent keys keep their defaults
  EXPECT_EQ(c.num_kv_pairs, 16);
  EXPECT_EQ(c.power_a, 0.5);
  MqarConfig back;
  core::read_config(core::write_config(c), back, "round trip");
  EXPECT_EQ(back.vocab_size, 8192);
  EXPECT_EQ(back.power_a, 0.5);
  EXPECT_THROW(core::read_config(core::parse_yaml("num_pairs: 3\n", "<mqar>"), c, "mqar"), ValueError);
}

TEST(MqarAccuracy, HandMadeLogits) {
  // B = 1, T = 4, V = 4. Position 0 is wrong but ignored; 1 right; 2 wrong; 3 right (tie 2/3 goes
  // to the lower id, 2).
  const Tensor logits = from_list({9, 0, 0, 0,   //
                                   0, 0, 5, 1,   //
                                   0, 0, 1, 7,   //
                                   0, 0, 3, 3},  //
                                  {1, 4, 4});
  const Tensor targets = from_list({1, 2, 2, 2}, {1, 4}, DType::i64);
  const Tensor scored = from_list({-100, 2, 2, 2}, {1, 4}, DType::i64);
  EXPECT_DOUBLE_EQ(mqar_accuracy(logits, scored), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(mqar_accuracy(logits, targets), 2.0 / 4.0);
  EXPECT_DOUBLE_EQ(mqar_accuracy(logits.to(DType::f64), scored), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(mqar_accuracy(logits, full({1, 4}, -100, DType::i64)), 0.0);  // nothing scored
  EXPECT_THROW(mqar_accuracy(logits, from_list({1, 2}, {1, 2}, DType::i64)), ShapeError);
  EXPECT_THROW(mqar_accuracy(logits, scored.to(DType::f32)), DTypeError);
}

TEST(MqarAccuracy, OracleLogitsScoreOneAndConstantLogitsScoreZero) {
  const MqarConfig c;
  const Batch batch = mqar_batch(c, 4, 1, 0);
  const int64_t B = 4, T = c.seq_len, V = c.vocab_size;
  Tensor logits = zeros({B, T, V});
  const auto targets = batch.targets.to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      if (targets[b * T + t] != -100) logits.set({b, t, targets[b * T + t]}, 1.0);
  EXPECT_DOUBLE_EQ(mqar_accuracy(logits, batch.targets), 1.0);
  // All-zero logits predict token 0, never a value (values are >= V/2).
  EXPECT_DOUBLE_EQ(mqar_accuracy(zeros({B, T, V}), batch.targets), 0.0);
}

}  // namespace
}  // namespace lnx::data
