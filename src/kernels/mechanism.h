// Token-mixing mechanisms and their registry (DESIGN.md §4).
//
// Dimension letters: B batch, T time, H heads, K key dim, V value dim, N sequences (B, or the
// number of packed sequences when cu_seqlens is given, then B = 1), S chunk size.
//
// Every mechanism has three forms with one signature: inputs by name (q, k, v, g, beta,
// initial_state, …), options, and outputs o [B, T, H, V] and final_state [N, H, K, V].
//   reference — token-by-token recurrence built from tensor ops; run in f64 it is the
//               definition of the mechanism; gradients by autodiff.
//   recurrent — fused token loop with a hand-written vjp (decoding, short inputs).
//   chunk     — chunked parallel form with a hand-written vjp (training, prefill).
// All inputs, initial_state included, receive gradients; final_state can be differentiated.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tensor/ops.h"

namespace lnx::kernels {

enum class Form { reference, recurrent, chunk };
const char* form_name(Form form);
Form parse_form(const std::string& name);  // ValueError listing the forms
inline const Form kAllForms[] = {Form::reference, Form::recurrent, Form::chunk};

struct MechanismOptions {
  std::optional<double> scale;      // default K^-1/2 (a mechanism may document another default)
  int64_t chunk_size = 64;          // chunk form: a power of two
  bool output_final_state = true;
  Tensor cu_seqlens;                // [N+1] i32/i64 offsets of packed sequences; needs B = 1
  // Mechanism-specific (each mechanism lists the ones it reads in Mechanism::options).
  bool normalize = false;           // linear_attn: o /= scale·q·z + 1e-10 with z = Σ k
  bool use_qk_l2norm = false;       // delta rules: L2-normalise q and k inside the kernel
  int64_t window = 0;               // softmax_attention: sliding window (0 = unlimited); query i
                                    // sees keys j with i − window < j ≤ i
};

struct MechanismOutputs {
  Tensor o;            // [B, T, H, V]
  Tensor final_state;  // [N, H, K, V]; undefined unless output_final_state
  // A state that is not [N, H, K, V] (softmax_attention's KV cache: "k_cache", "v_cache"),
  // named as the inputs that resume from it; empty unless output_final_state.
  TensorDict extra_state;
};

struct InputSpec {
  std::string name;         // as in safetensors files and the CLI: "q", "g", "initial_state", …
  std::string shape;        // e.g. "[B,T,H,K]"
  bool required = true;
  std::string description;
};

// Sizes of a test or benchmark problem; mechanisms make their own random inputs from them.
struct ProblemSize {
  int64_t B = 1, T = 1, H = 1, K = 1, V = 1;
};

using MechanismFn = std::function<MechanismOutputs(const TensorDict& inputs, const MechanismOptions& options)>;

struct Mechanism {
  std::string name;
  std::string description;
  std::vector<InputSpec> inputs;
  std::vector<std::string> options;     // option names it reads besides the common ones
  std::map<Form, MechanismFn> forms;
  // false for mechanisms without an [N,H,K,V] state (softmax_attention): they take no
  // initial_state, return no final_state, and resume from their extra_state instead.
  bool has_recurrent_state = true;
  // The inputs that play the key [B,T,H,K] and value [B,T,H,V] roles (tests give them wrong
  // shapes and dtypes to check the errors); mamba2, for one, calls them B and x.
  std::string key_input = "k", value_input = "v";
  // Random inputs (without initial_state) of the given sizes and dtype, with gates drawn
  // over the range the numerics policy asks for (logsigmoid(x)/n, n from 0.1 to 10).
  std::function<TensorDict(const ProblemSize& size, Generator& gen, DType dtype)> make_inputs;
  // Useful FLOPs of one forward pass of the given form (for benchmarks), or nullptr.
  std::function<double(const ProblemSize& size, Form form, int64_t chunk_size)> flops;
};

// The registry. Built-in mechanisms are registered on first use (register_builtin.cpp).
void register_mechanism(Mechanism m);
const Mechanism& mechanism(const std::string& name);  // ValueError listing the names
std::vector<std::string> mechanism_names();

// Runs one form of one mechanism after checking the input names against its specs.
MechanismOutputs run(const std::string& name, Form form, const TensorDict& inputs,
                     const MechanismOptions& options = {});

}  // namespace lnx::kernels
