// Fuzz targets: each takes one untrusted input (bytes) and feeds it to a loader. A loader may
// refuse the input with an lnx::Error (the clear errors the CLI prints); anything else escapes
// to the caller (a crash, a sanitizer report, another exception, a hang) and is a finding.
//
// Two drivers call them: fuzz_main.cpp (libFuzzer's LLVMFuzzerTestOneInput, one executable per
// target, built by scripts/fuzz.sh with clang, ASan and UBSan) and tests/fuzz (every seed of
// fuzz/corpus/<target>/ and every regression input of fuzz/regressions/<target>/, replayed in
// the normal test build).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "models/lm_model.h"

namespace lnx::fuzz {

// True when the input was accepted (it loaded), false when it was refused with an lnx::Error.
using FuzzTarget = bool (*)(const uint8_t* data, size_t size);

struct FuzzTargetInfo {
  std::string name;  // also the folder of its corpus and regression inputs
  FuzzTarget run;
};

// safetensors images (parse_safetensors, and load_safetensors of the same bytes as a file).
bool fuzz_safetensors(const uint8_t* data, size_t size);
// tokenizer.json files (load_tokenizer), then encode/decode of a fixed text through them.
bool fuzz_tokenizer_json(const uint8_t* data, size_t size);
// Training configs: YAML, with lines "@section.key=value" taken out as overrides and applied
// the way the CLI's key=value arguments are.
bool fuzz_train_config(const uint8_t* data, size_t size);
// Generation state files for a fixed tiny model, as written and as a forger would write them
// (the checksum recomputed over the mutated tensors).
bool fuzz_state_file(const uint8_t* data, size_t size);
// Jinja chat templates, parsed and rendered over a fixed conversation.
bool fuzz_chat_template(const uint8_t* data, size_t size);
// Checkpoint directories: a config (config.yaml, or a Hugging Face config.json when it starts
// with '{') and model.safetensors, separated by a line "#--weights--".
bool fuzz_checkpoint(const uint8_t* data, size_t size);

const std::vector<FuzzTargetInfo>& fuzz_targets();

// A model of width 8, 16 tokens and heads of 4 whose layers are the comma-separated mixers (of
// gated_deltanet, mamba2, attention): small seeds, fast fuzzing.
models::ModelConfig small_model_config(const std::string& mixers);
// The model whose state files fuzz_state_file loads (fuzz/make_seeds.cpp saves its seeds):
// gated_deltanet, mamba2, attention (recurrent states, conv caches and a KV cache), seed 1.
const models::LMModel& state_file_model();

}  // namespace lnx::fuzz
