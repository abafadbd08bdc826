// Supervised fine-tuning through the trainer: a packed SFT batch gives the same loss and
// gradients as its examples one by one (no state or attention crosses an example), and
// `train` with data.source sft fine-tunes a Hugging Face model on prompt/completion lines.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/sft.h"
#include "models/presets.h"
#include "numeric.h"
#include "tensor/ops.h"
#include "train/trainer.h"

namespace lnx::train {
namespace {

namespace fs = std::filesystem;

TEST(SftTraining, PackedBatchEqualsItsExamplesOneByOne) {
  for (const std::string preset : {"hybrid-tiny", "mamba2-tiny"}) {
    SCOPED_TRACE(preset);
    models::ModelConfig c = models::preset_config(preset);
    c.vocab_size = 40;
    models::LMModel m(c, 3);
    m.to(DType::f64);
    Generator gen(4);
    std::vector<data::SftExample> ex;
    for (int i = 0; i < 4; ++i) {
      data::SftExample e;
      const int64_t len = 5 + 3 * i;
      for (int64_t t = 0; t < len; ++t) {
        e.ids.push_back(static_cast<int32_t>((7 * i + 11 * t) % 40));
        e.scored.push_back(t >= len / 2 ? 1 : 0);
      }
      ex.push_back(e);
    }
    const data::SftSource src(ex, 64, 64, 1);
    const data::Batch b = src.batch(0);
    const std::vector<int64_t> cu = b.cu_seqlens.to_vector<int64_t>();
    ASSERT_EQ(cu.size(), 5u);  // all four in one batch
    models::ForwardOptions packed;
    packed.cu_seqlens = b.cu_seqlens;
    const Tensor loss = m.loss(b.ids, b.targets, packed);
    // One by one: the summed losses over the summed counts.
    double total = 0, count = 0;
    for (size_t s = 0; s + 1 < cu.size(); ++s) {
      const Tensor ids = slice(b.ids, 1, cu[s], cu[s + 1]), tg = slice(b.targets, 1, cu[s], cu[s + 1]);
      const std::vector<int64_t> t = tg.to_vector<int64_t>();
      const double n = static_cast<double>(std::count_if(t.begin(), t.end(), [](int64_t x) { return x != -100; }));
      total += m.loss(ids, tg).item() * n;
      count += n;
    }
    EXPECT_NEAR(loss.item(), total / count, 1e-10);
  }
}

TEST(SftTraining, FineTunesAHuggingFaceModelOnPromptCompletionLines) {
  const std::string dir = ::testing::TempDir() + "lnx_sft_run", data = ::testing::TempDir() + "lnx_sft.jsonl";
  fs::remove_all(dir);
  {
    std::ofstream f(data);
    for (int a = 0; a < 10; ++a)
      for (int b = 0; b < 10; ++b)
        f << "{\"prompt\": \"" << a << "+" << b << "=\", \"completion\": \"" << a + b << "\"}\n";
  }
  TrainConfig c = load_train_config("", {"data.source=sft", "data.path=" + data, "train.out_dir=" + dir,
                                         "train.init_from=" LNX_SOURCE_DIR "/tests/fixtures/hf/llama", "train.steps=60",
                                         "train.batch_size=4", "train.seq_len=32", "train.eval_every=0",
                                         "train.sample_tokens=0", "train.log_every=10", "optimizer.lr=3e-3"});
  const TrainResult r = train(c);
  std::ifstream metrics(dir + "/metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(metrics, line);)
    if (line.find("\"loss\"") != std::string::npos)
      losses.push_back(std::stod(line.substr(line.find("\"loss\":") + 7)));
  ASSERT_GE(losses.size(), 4u);
  EXPECT_LT(r.val_loss, 0.5 * losses.front()) << "first " << losses.front() << ", validation " << r.val_loss;
  EXPECT_TRUE(fs::exists(dir + "/last/generation_config.json"));  // carried from the model directory
  fs::remove_all(dir);
}

TEST(SftTraining, ChatTemplateFromTheConfig) {
  // A model from scratch has no template: messages lines need data.chat_template, which renders
  // them, decides which tokens count, and is kept in the checkpoint for chat and generate.
  const std::string dir = ::testing::TempDir() + "lnx_sft_template_run";
  const std::string data = ::testing::TempDir() + "lnx_sft_chat.jsonl", tmpl = ::testing::TempDir() + "lnx_chat.jinja";
  fs::remove_all(dir);
  {
    std::ofstream f(data);
    for (int i = 0; i < 20; ++i)
      f << R"({"messages": [{"role": "user", "content": "hi )" << i << R"("}, {"role": "assistant", "content": "yo )"
        << i % 3 << "\"}]}\n";
    std::ofstream(tmpl) << "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                           "{% if add_generation_prompt %}<assistant>{% endif %}";
  }
  std::vector<std::string> o = {"data.source=sft",       "data.path=" + data,  "train.out_dir=" + dir,
                                "model.preset=gla-tiny", "train.steps=2",      "train.batch_size=2",
                                "train.seq_len=64",      "train.eval_every=0", "train.sample_tokens=0"};
  EXPECT_NE(error_of<ValueError>([&] { train(load_train_config("", o)); }).find("template"), std::string::npos);
  o.push_back("data.chat_template=" + tmpl);
  const TrainResult r = train(load_train_config("", o));
  EXPECT_TRUE(std::isfinite(r.val_loss));
  std::ifstream kept(dir + "/last/chat_template.jinja");
  EXPECT_NE(std::string(std::istreambuf_iterator<char>(kept), {}).find("<{{ m.role }}>"), std::string::npos);
  o.back() = "data.chat_template=" + data;  // not a template
  std::ofstream(data, std::ios::app) << "{% if %}\n";
  EXPECT_NE(error_of<ValueError>([&] { train(load_train_config("", o)); }).find("data.chat_template"),
            std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lnx::train
