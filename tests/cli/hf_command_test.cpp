// The commands on Hugging Face directories (tests/fixtures/hf): convert both ways, info,
// generate, logits, and train --init-from (fine-tuning lowers the loss), plus their errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "io/safetensors.h"
#include "numeric.h"

namespace lnx {
namespace {

namespace fs = std::filesystem;

const std::string kFixtures = LNX_SOURCE_DIR "/tests/fixtures/hf/";

std::string temp(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "lnx_hf_cli_" + name;
  fs::remove_all(dir);
  return dir;
}

TEST(ConvertCommand, HuggingFaceToCheckpointAndBackKeepsEveryTensorAndFile) {
  for (const std::string type : {"qwen2", "mamba2"}) {
    SCOPED_TRACE(type);
    const std::string ours = temp(type + "_lnx"), back = temp(type + "_hf");
    CommandResult r = run_cli("convert --in " + kFixtures + type + " --out " + ours);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("LinearNexus checkpoint"), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(ours + "/config.yaml"));
    EXPECT_TRUE(fs::exists(ours + "/tokenizer.json"));
    r = run_cli("convert --in " + ours + " --out " + back);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Hugging Face " + type), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(back + "/tokenizer.json"));
    const SafetensorsFile a = load_safetensors(kFixtures + type + "/model.safetensors");
    const SafetensorsFile b = load_safetensors(back + "/model.safetensors");
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (const auto& [name, t] : a.tensors) {
      ASSERT_TRUE(b.tensors.contains(name)) << name;
      EXPECT_TRUE(all_close(b.tensors.at(name), t, 0.0, 0.0)) << name;  // bf16 → f32 is exact
    }
    fs::remove_all(ours);
    fs::remove_all(back);
  }
}

TEST(ConvertCommand, ErrorsNameTheProblem) {
  CommandResult r = run_cli("convert --in /nonexistent/model --out " + temp("x"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("is not a directory"), std::string::npos) << r.output;
  r = run_cli("convert --in " + kFixtures + "llama --out " + temp("y") + " --to onnx");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--to must be hf or linearnexus"), std::string::npos) << r.output;
  r = run_cli("convert --in " + kFixtures + "llama --out " + temp("z") + " --to hf --model-type mamba");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("mamba has only mamba blocks"), std::string::npos) << r.output;
}

TEST(InfoCommand, ReadsAHuggingFaceDirectory) {
  const CommandResult r = run_cli("info --checkpoint " + kFixtures + "mamba2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("model mamba2: 3 blocks, d_model 48, vocab 299"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("parameters: 65328"), std::string::npos) << r.output;
}

TEST(GenerateFromHuggingFace, RunsAHuggingFaceDirectory) {
  const CommandResult r =
      run_cli("generate --checkpoint " + kFixtures + "llama --prompt 'The quick' --max-tokens 8 --temperature 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("The quick", 0), 0u) << r.output;
}

TEST(LogitsCommand, GivesTransformersLogits) {
  const std::string ids = temp("ids.safetensors"), out = temp("logits.safetensors");
  const SafetensorsFile ref = load_safetensors(kFixtures + "qwen3/reference.safetensors");
  save_safetensors(ids, {{"input_ids", ref.tensors.at("input_ids")}});
  for (const std::string mode : {"chunk", "recurrent"}) {
    const CommandResult r = run_cli("logits --checkpoint " + kFixtures + "qwen3 --input " + ids + " --output " + out +
                                    " --mode " + mode + " --dtype f64");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(all_close(load_safetensors(out).tensors.at("logits"), ref.tensors.at("logits"), 1e-6)) << mode;
  }
  const CommandResult bad = run_cli("logits --checkpoint " + kFixtures + "qwen3 --input " + out + " --output " + out);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("has no tensor input_ids"), std::string::npos) << bad.output;
}

// Mean training loss of the first and of the last `n` steps in metrics.jsonl.
std::pair<double, double> first_and_last_losses(const std::string& path, size_t n) {
  std::ifstream in(path);
  std::vector<double> losses;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  EXPECT_GE(losses.size(), 2 * n);
  double a = 0, b = 0;
  for (size_t i = 0; i < n; ++i) {
    a += losses[i] / static_cast<double>(n);
    b += losses[losses.size() - 1 - i] / static_cast<double>(n);
  }
  return {a, b};
}

TEST(TrainCommand, InitFromFineTunesAHuggingFaceModel) {
  const std::string text = temp("text.txt"), run = temp("finetune"), back = temp("finetuned_hf");
  {
    std::ofstream f(text);
    for (int i = 0; i < 300; ++i) f << "The quick brown fox jumps over the lazy dog. Hello world!\n";
  }
  for (const std::string type : {"llama", "qwen3_next"}) {
    SCOPED_TRACE(type);
    fs::remove_all(run);
    CommandResult r = run_cli("train --init-from " + kFixtures + type + " --data " + text + " --steps 40 --out " + run +
                              " train.batch_size=4 train.seq_len=32 train.eval_every=0 train.sample_tokens=0 "
                              "train.log_every=1 optimizer.lr=3e-3");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("model: " + type), std::string::npos) << r.output;
    const auto [first, last] = first_and_last_losses(run + "/metrics.jsonl", 5);
    EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
    // The fine-tuned model goes back to Hugging Face.
    r = run_cli("convert --in " + run + "/last --out " + back);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Hugging Face " + type), std::string::npos) << r.output;
  }
  CommandResult r = run_cli("train --init-from " + kFixtures + "llama --preset attention-tiny --data " + text);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("not both"), std::string::npos) << r.output;
  fs::remove_all(run);
  fs::remove_all(back);
}

}  // namespace
}  // namespace lnx

namespace lnx {
namespace {

TEST(GrpoCommand, PostTrainsAHuggingFaceDirectory) {
  const std::string out = temp("grpo");
  CommandResult r = run_cli("grpo --init-from " + kFixtures + "qwen3 --out " + out +
                            " --steps 2 prompts_per_step=2 group_size=4 max_new_tokens=4 eval_prompts=4 digits=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("held-out accuracy (greedy)"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out + "/last/grpo_state.json"));
  r = run_cli("grpo --out " + out + " group_size=1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("init_from is required"), std::string::npos) << r.output;
  fs::remove_all(out);
}

}  // namespace
}  // namespace lnx
