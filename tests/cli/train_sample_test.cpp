// The sample `linearnexus train` prints after a run, called in process (lnx_cli): the trainer
// hands back the trained model, tokenizer and prompt; the CLI generates from them.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli/commands.h"
#include "generate/generate.h"

namespace lnx {
namespace {

namespace fs = std::filesystem;

train::TrainConfig tiny_run(const std::string& name) {
  train::TrainConfig c =
      train::load_train_config("", {"model.preset=hybrid3-tiny", "model.d_model=32", "data.builtin_bytes=60000",
                                    "train.steps=4", "train.batch_size=4", "train.seq_len=32", "train.eval_batches=1",
                                    "train.log_every=0", "train.sample_tokens=16", "train.sample_prompt=The"});
  c.train.out_dir = ::testing::TempDir() + "lnx_cli_sample_" + name;
  fs::remove_all(c.train.out_dir);
  return c;
}

TEST(TrainingSample, GeneratesAfterThePromptFromTheTrainedModel) {
  train::TrainConfig c = tiny_run("text");
  const train::TrainResult r = train::train(c);
  const std::string sample = cli::training_sample(r, c);
  ASSERT_FALSE(sample.empty());
  EXPECT_EQ(sample.rfind("The", 0), 0u) << sample;
  // The same generation as calling generate() on the model (seeded, so repeatable).
  generate::SamplingOptions so;
  so.max_new_tokens = 16;
  so.temperature = 0.8;
  so.seed = static_cast<uint64_t>(c.train.seed);
  std::vector<int32_t> ids = r.sample_prompt;
  const std::vector<int32_t> out = generate::generate(*r.model, ids, so);
  EXPECT_EQ(out.size(), 16u);
  ids.insert(ids.end(), out.begin(), out.end());
  EXPECT_EQ(sample, r.tokenizer->decode(ids));
  c.train.sample_tokens = 0;
  EXPECT_EQ(cli::training_sample(r, c), "");
  fs::remove_all(c.train.out_dir);
}

TEST(TrainingSample, NoneForSyntheticTasks) {
  train::TrainConfig c = tiny_run("mqar");
  c.data.source = "mqar";
  c.data.mqar_vocab_size = 64;
  c.train.steps = 2;
  const train::TrainResult r = train::train(c);
  EXPECT_EQ(cli::training_sample(r, c), "");
  fs::remove_all(c.train.out_dir);
}

}  // namespace
}  // namespace lnx
