// Multi-query associative recall (MQAR), the recall benchmark of Zoology (Arora, Eyuboglu et
// al., "Zoology: Measuring and improving recall in efficient language models", 2023), built as
// Zoology's generator defines it. Dimension letters: B sequences, T = seq_len tokens, V = vocab.
//
// One sequence of T input tokens, with P = num_kv_pairs and C = 2P (the context):
//   - keys:   P distinct tokens drawn from [1, V/2)      (token 0 is never a key)
//   - values: P distinct tokens drawn from [V/2, V)      (disjoint from the keys)
//   - inputs[0 .. C-1] = k_0 v_0 k_1 v_1 … k_{P-1} v_{P-1}
//   - queries: S = (T - C) / 2 slots; P distinct gaps g_i in [0, S) are drawn without
//     replacement with weights (g + 1)^(power_a - 1) (a power law: short gaps are far more
//     likely); key k_i is placed at input position C + 2 g_i
//   - targets[C + 2 g_i] = v_i (the value paired with the key AT that input position: the
//     model must emit the value on the same step it reads the query key); every other target
//     is -100 (ignored by cross_entropy's default ignore_index)
//   - every other input position (the odd slots after the context and the unused even ones)
//     is filled with a token uniform over [0, V) — Zoology's random_non_queries = True. The
//     fill may repeat a key; like Zoology, targets still score only the P query positions.
// So exactly P positions per sequence are scored, each key is queried exactly once.
//
// Zoology builds a label array one longer than the inputs and shifts it by one; the net
// effect is the alignment above (the target sits at the query key's own position), which
// the tests check.
//
// Requirements (ValueError otherwise): seq_len even, num_kv_pairs >= 1, 4 * num_kv_pairs <=
// seq_len (room for the queries), num_kv_pairs < vocab_size / 2 (enough keys in [1, V/2)),
// power_a > 0. Zoology also asserts vocab_size > seq_len; nothing here depends on it, so it is
// not required.
#pragma once

#include <cstdint>

#include "data/loader.h"
#include "tensor/tensor.h"

namespace lnx::data {

struct MqarConfig {
  int64_t vocab_size = 256;
  int64_t seq_len = 64;
  int64_t num_kv_pairs = 4;
  double power_a = 0.01;

  template <class V> void visit(V&& v) {
    v("vocab_size", vocab_size, "tokens in the vocabulary: keys from the first half, values from the second");
    v("seq_len", seq_len, "tokens per sequence (even)");
    v("num_kv_pairs", num_kv_pairs, "key-value pairs at the start, each queried once later");
    v("power_a", power_a, "power-law exponent of the query gaps; smaller = queries closer to the pairs");
  }
};

// Throws ValueError naming the field when cfg breaks a requirement listed above.
void validate(const MqarConfig& cfg);

// B sequences: ids [B, T] i64, targets [B, T] i64 (-100 where not scored), mask [B, T] f32
// (1 where scored), index = index. Row b is a pure function of (cfg, seed, index, b) — so
// batch k is reproducible alone, and a larger batch_size only appends rows.
Batch mqar_batch(const MqarConfig& cfg, int64_t batch_size, uint64_t seed, int64_t index);

// Fraction of scored positions (targets != -100) where the argmax of logits over V equals the
// target (ties go to the lowest token id). logits [B, T, V] f32 or f64, targets [B, T] i64.
// Returns 0 when no position is scored.
double mqar_accuracy(const Tensor& logits, const Tensor& targets);

}  // namespace lnx::data
