// What the GRPO and PPO tests share: a tiny run on the llama fixture and reading metrics.jsonl.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lnx::posttrain {

// 4 steps of 2 prompts × 4 samples of 1-digit addition, 4 tokens each, a checkpoint every step;
// out (removed first) is the run directory.
inline std::vector<std::string> tiny_run(const std::string& out) {
  std::filesystem::remove_all(out);
  return {"init_from=" LNX_SOURCE_DIR "/tests/fixtures/hf/llama",
          "out_dir=" + out,
          "steps=4",
          "prompts_per_step=2",
          "group_size=4",
          "max_new_tokens=4",
          "eval_prompts=4",
          "eval_every=0",
          "save_every=1",
          "digits=1",
          "lr=1e-3"};
}

// A reward program whose rewards vary from the first step (a random model's answers are never
// right): each JSON line's length / 100, so the weights move and resume is really tested.
inline const char* kLengthReward = "awk '{ print length($0) / 100 }'";

inline std::vector<nlohmann::json> metric_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l));
  return out;
}

}  // namespace lnx::posttrain
