// Which kernel form a mixer runs: the chunk form for long inputs (training, prefill), the
// recurrent form for short ones (decoding), or one forced by the caller.
#pragma once

#include <cstdint>
#include <string>

namespace lnx::core {

enum class Mode { automatic, chunk, recurrent };

const char* mode_name(Mode mode);
Mode parse_mode(const std::string& name);  // ValueError listing "auto", "chunk", "recurrent"

// Inputs of at most this many tokens per sequence run the recurrent form under Mode::automatic:
// below a chunk the chunk form's intra-chunk work buys nothing.
constexpr int64_t kRecurrentMaxTokens = 64;

// The form to run for sequences of at most max_len tokens: chunk or recurrent, never automatic.
// With `recording_gradients` (a training forward) automatic is always the chunk form: its
// backward is blocked matrix products, the recurrent form's backward walks the tokens one by one.
Mode select_mode(Mode requested, int64_t max_len, bool recording_gradients = false);

}  // namespace lnx::core
