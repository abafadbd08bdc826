// The training loop end to end on tiny models: exact resume, NaN stop, MQAR, Sophia's Hessian
// path, configs (files, overrides, errors), eval of a checkpoint.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "io/directory_lock.h"
#include "numeric.h"
#include "train/run_data.h"
#include "train/trainer.h"

namespace lnx::train {
namespace {

namespace fs = std::filesystem;

TrainConfig tiny_run(const std::string& name) {
  TrainConfig c = load_train_config(
      "", {"model.preset=hybrid3-tiny", "model.d_model=32", "data.builtin_bytes=60000", "train.steps=12",
           "train.batch_size=4", "train.seq_len=32", "train.eval_every=4", "train.eval_batches=2", "train.save_every=3",
           "train.log_every=0", "train.sample_tokens=16", "schedule.warmup_steps=3"});
  c.train.out_dir = ::testing::TempDir() + "lnx_train_" + name;
  fs::remove_all(c.train.out_dir);
  return c;
}

// One step of attention-tiny on batches of 2 × 16 tokens (overrides in `extra` win), in a fresh
// TempDir()/name.
TrainConfig attention_run(const std::string& name, std::vector<std::string> extra = {}) {
  std::vector<std::string> o = {"model.preset=attention-tiny", "train.steps=1",    "data.builtin_bytes=20000",
                                "train.batch_size=2",          "train.seq_len=16", "train.sample_tokens=0"};
  o.insert(o.end(), extra.begin(), extra.end());
  TrainConfig c = load_train_config("", o);
  c.train.out_dir = ::testing::TempDir() + name;
  fs::remove_all(c.train.out_dir);
  return c;
}

std::vector<double> run_collecting(const TrainConfig& c, int64_t stop_after = -1) {
  std::vector<double> losses;
  TrainHooks hooks;
  hooks.after_step = [&](const StepMetrics& m) {
    losses.push_back(m.loss);
    return m.step != stop_after;
  };
  train(c, hooks);
  return losses;
}

TEST(Trainer, ResumedRunReproducesTheUninterruptedLosses) {
  const TrainConfig whole = tiny_run("whole");
  const std::vector<double> expected = run_collecting(whole);
  ASSERT_EQ(expected.size(), 12u);
  EXPECT_LT(expected.back(), expected.front());
  TrainConfig split = tiny_run("split");
  const std::vector<double> first = run_collecting(split, 6);  // stops after step 6 (7 steps), saving
  ASSERT_EQ(first.size(), 7u);
  const std::vector<double> rest = run_collecting(split);  // resumes at step 7
  ASSERT_EQ(rest.size(), 5u);
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i], expected[i]) << "step " << i;
  for (size_t i = 0; i < rest.size(); ++i)
    EXPECT_NEAR(rest[i], expected[7 + i], 1e-6 * std::abs(expected[7 + i])) << "step " << 7 + i;
  fs::remove_all(whole.train.out_dir);
  fs::remove_all(split.train.out_dir);
}

TEST(Trainer, ResultsCheckpointsMetricsAndEval) {
  TrainConfig c = tiny_run("result");
  const TrainResult r = train(c);
  EXPECT_EQ(r.steps, 12);
  EXPECT_EQ(r.resumed_from, -1);
  EXPECT_GT(r.unigram_entropy, 1.0);
  EXPECT_TRUE(std::isfinite(r.val_loss));
  EXPECT_LE(r.best_val_loss, r.val_loss);
  // What the CLI's sample needs: the trained model, the tokenizer and the prompt.
  ASSERT_TRUE(r.model && r.tokenizer);
  EXPECT_FALSE(r.sample_prompt.empty());
  EXPECT_EQ(r.model->config().vocab_size, r.tokenizer->vocab_size());
  for (const char* f :
       {"last/model.safetensors", "last/config.yaml", "last/optimizer.safetensors", "last/trainer_state.json",
        "last/tokenizer.json", "last/train.yaml", "best/model.safetensors", "metrics.jsonl"})
    EXPECT_TRUE(fs::exists(c.train.out_dir + "/" + f)) << f;
  // eval of the last checkpoint on the run's own data config gives the run's last validation loss.
  const TrainConfig saved = load_train_config(c.train.out_dir + "/last/train.yaml", {});
  // Issue 14 D16: scratch directories of killed evals are removed, and eval leaves none of its own.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const fs::path stale = fs::temp_directory_path() / ("lnx-eval-" + std::to_string(dead));
  const fs::path own = fs::temp_directory_path() / ("lnx-eval-" + std::to_string(::getpid()));
  fs::create_directories(stale / "data");
  const EvalResult e = evaluate_checkpoint(c.train.out_dir + "/last", saved, c.train.eval_batches);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_FALSE(fs::exists(own));
  EXPECT_NEAR(e.loss, r.val_loss, 1e-6 * r.val_loss);
  EXPECT_NEAR(e.perplexity, std::exp(e.loss), 1e-9 * e.perplexity);
  // A finished run resumed with more steps continues from its last step.
  c.train.steps = 14;
  const TrainResult more = train(c);
  EXPECT_EQ(more.resumed_from, 12);
  EXPECT_EQ(more.steps, 14);
  fs::remove_all(c.train.out_dir);
}

TEST(Trainer, DivergenceStopsWithAClearError) {
  TrainConfig c = tiny_run("nan");
  c.optimizer.lr = 1e30;
  c.train.clip = 0;
  try {
    train(c);
    FAIL() << "no error";
  } catch (const ValueError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("the loss became"), std::string::npos) << m;
    EXPECT_NE(m.find("lower optimizer.lr"), std::string::npos) << m;
  }
  fs::remove_all(c.train.out_dir);
}

TEST(Trainer, MqarReportsRecallAccuracyAndSophiaRuns) {
  TrainConfig c = tiny_run("mqar");
  c.data.source = "mqar";
  c.data.mqar_vocab_size = 64;
  c.train.seq_len = 32;
  c.train.steps = 6;
  c.optimizer.name = "sophia";
  c.optimizer.hessian_interval = 2;
  const TrainResult r = train(c);
  EXPECT_GE(r.val_accuracy, 0.0);
  EXPECT_LE(r.val_accuracy, 1.0);
  EXPECT_TRUE(std::isfinite(r.last_loss));
  EXPECT_TRUE(r.model);
  EXPECT_FALSE(r.tokenizer);  // synthetic task: no text, no sample
  EXPECT_TRUE(r.sample_prompt.empty());
  fs::remove_all(c.train.out_dir);
}

TEST(Trainer, ARunDirectoryInUseIsRefused) {
  // Issue 14 D4b: a second run in the same out_dir is refused, naming the holder.
  TrainConfig c = attention_run("lnx_locked_run");
  fs::create_directories(c.train.out_dir);
  {
    const io::DirectoryLock holder("someone", c.train.out_dir);
    EXPECT_NE(lnx::error_of<IOError>([&] { train(c); }).find("is in use by process " + std::to_string(::getpid())),
              std::string::npos);
  }
  EXPECT_EQ(train(c).steps, 1);  // free again
  fs::remove_all(c.train.out_dir);
}

TEST(Trainer, AnExplicitVocabularyIsKeptOrRefusedNeverReplaced) {
  // Issue 14 D14: model.vocab_size=10 was silently replaced by the tokenizer's size.
  auto run = [](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> o = {"model.preset=attention-tiny",
                                  "train.steps=1",
                                  "data.builtin_bytes=20000",
                                  "train.batch_size=2",
                                  "train.seq_len=16",
                                  "train.sample_tokens=0",
                                  "train.out_dir=" + ::testing::TempDir() + "lnx_vocab_" + name};
    o.insert(o.end(), extra.begin(), extra.end());
    TrainConfig c = load_train_config("", o);
    fs::remove_all(c.train.out_dir);
    return c;
  };
  const TrainConfig small = run("small", {"model.vocab_size=10"});
  EXPECT_TRUE(small.model_vocab_size_set);
  const std::string e = lnx::error_of<ValueError>([&] { train(small); });
  EXPECT_NE(e.find("model.vocab_size is 10 but the char tokenizer has"), std::string::npos) << e;
  const TrainConfig large = run("large", {"model.vocab_size=320"});
  const TrainResult r = train(large);
  EXPECT_EQ(r.model->config().vocab_size, 320);
  EXPECT_LT(r.tokenizer->vocab_size(), 320);
  // The saved config names 320 too, so a resume or an eval builds the same model.
  EXPECT_EQ(load_train_config(large.train.out_dir + "/last/train.yaml", {}).model.vocab_size, 320);
  const TrainConfig preset = run("preset", {});  // hybrid-tiny's 256 is the preset's, not the user's
  EXPECT_FALSE(preset.model_vocab_size_set);
  EXPECT_EQ(train(preset).model->config().vocab_size, r.tokenizer->vocab_size());
  for (const TrainConfig* c : {&small, &large, &preset}) fs::remove_all(c->train.out_dir);
}

TEST(Trainer, AFifoInPlaceOfTheTrainerStateIsRefusedNotWaitedOn) {
  // Issue 14 (second CLI sweep): a resume blocked forever opening a FIFO trainer_state.json.
  TrainConfig c = attention_run("lnx_fifo_state_run");
  train(c);
  const std::string state = c.train.out_dir + "/last/trainer_state.json";
  fs::remove(state);
  ASSERT_EQ(::mkfifo(state.c_str(), 0600), 0);
  c.train.steps = 2;
  EXPECT_NE(lnx::error_of<IOError>([&] { train(c); }).find("not a regular file"), std::string::npos);
  fs::remove_all(c.train.out_dir);
}

TEST(Trainer, AnUpdateThatOverflowsTheWeightsIsNotSaved) {
  // Issue 14 D7: the update that made the weights non-finite was saved as the "last good"
  // checkpoint. lr = 1e39 overflows f32 weights on the first update.
  TrainConfig c = attention_run(
      "lnx_overflow_run", {"train.steps=3", "train.save_every=1", "optimizer.lr=1e39", "schedule.warmup_steps=0"});
  const std::string e = lnx::error_of<ValueError>([&] { train(c); });
  EXPECT_NE(e.find("the weights became non-finite"), std::string::npos) << e;
  EXPECT_NE(e.find("none yet"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(c.train.out_dir + "/last"));
  fs::remove_all(c.train.out_dir);
}

TEST(Trainer, TextThatIsMostlyUnknownIsRefusedAndSomeIsNoted) {
  // Issue 14 D10: a file of invalid bytes trained to loss 0.0000 on <unk> without a word.
  const std::string path = ::testing::TempDir() + "lnx_invalid_utf8.txt";
  std::ofstream(path, std::ios::binary) << std::string(5000, '\xff');
  TrainConfig c = attention_run("lnx_unk_run", {"data.source=text", "data.path=" + path});
  EXPECT_NE(lnx::error_of<ValueError>([&] { train(c); }).find("100% of its 5000 tokens are <unk>"), std::string::npos);
  std::string text;
  for (int i = 0; i < 400; ++i) text += "some text. ";
  std::ofstream(path, std::ios::binary) << text << "\xff\xfe";
  const RunData d = prepare_run_data(c, c.train.out_dir, "", "");
  EXPECT_NE(d.description.find("(2 of them, 0.05%, <unk>"), std::string::npos) << d.description;
  fs::remove(path);
  fs::remove_all(c.train.out_dir);
}

TEST(Trainer, AResumeWithOtherDataIsRefused) {
  // Issue 14 D14: a resume with another tokenizer, data or seq_len silently kept the run's.
  TrainConfig c = attention_run("lnx_resume_other_data", {"train.steps=2"});
  train(c);
  TrainConfig other = c;
  other.train.steps = 4;
  other.data.builtin_bytes = 30000;
  other.data.tokenizer = "bpe";
  std::string e = lnx::error_of<ValueError>([&] { train(other); });
  EXPECT_NE(e.find("data.tokenizer char → bpe"), std::string::npos) << e;
  EXPECT_NE(e.find("data.builtin_bytes 20000 → 30000"), std::string::npos) << e;
  other = c;
  other.train.steps = 4;
  other.train.seq_len = 32;
  e = lnx::error_of<ValueError>([&] { train(other); });
  EXPECT_NE(e.find("train.seq_len 16 → 32"), std::string::npos) << e;
  other.train.seq_len = 16;  // more steps with the same data: resumes
  EXPECT_EQ(train(other).resumed_from, 2);
  fs::remove_all(c.train.out_dir);
}

TEST(TrainConfigFiles, EveryShippedConfigLoads) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(LNX_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    const TrainConfig c = load_train_config(entry.path().string(), {});
    EXPECT_GT(c.train.steps, 0) << entry.path();
    EXPECT_FALSE(c.model.block_pattern.empty()) << entry.path();
    ++n;
  }
  EXPECT_GE(n, 24);
}

TEST(TrainConfigFiles, OverridesAndErrors) {
  const TrainConfig c = load_train_config("", {"optimizer.lr=0.5", "model.preset=mamba2-tiny", "model.n_layer=3",
                                               "train.remat=true", "data.path=some file.txt"});
  EXPECT_EQ(c.optimizer.lr, 0.5);
  EXPECT_EQ(c.model.n_layer, 3);
  EXPECT_EQ(c.model.block_pattern, std::vector<std::string>{"mamba2"});
  EXPECT_TRUE(c.train.remat);
  EXPECT_EQ(c.data.path, "some file.txt");
  auto error_of = [](std::vector<std::string> o) {
    try {
      load_train_config("", o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error_of({"optimizer.lr"}).find("section.key=value"), std::string::npos);
  EXPECT_NE(error_of({"lr=3"}).find("needs a section"), std::string::npos);
  EXPECT_NE(error_of({"trian.steps=3"}).find("unknown section 'trian'"), std::string::npos);
  EXPECT_NE(error_of({"train.stpes=3"}).find("stpes"), std::string::npos);
  EXPECT_NE(error_of({"train.steps=many"}).find("steps"), std::string::npos);
  // Issue 14 D11: a key that is not a name (a list, a map) is a clear error, not an internal one.
  const std::string bad = ::testing::TempDir() + "lnx_bad_key.yaml";
  for (const char* text : {"? [a, b]\n: 1\n", "{x: 1}: 2\n", "train:\n  ? [steps]\n  : 3\n"}) {
    std::ofstream(bad) << text;
    EXPECT_NE(lnx::error_of<ValueError>([&] { load_train_config(bad, {}); }).find("name"), std::string::npos) << text;
  }
  // Issue 14 (CLI sweep): a config that is a list, or a section that is not a map, was silently
  // replaced by the overrides (the CLI always passes some); a directory or a device was read.
  std::ofstream(bad) << "[1, 2]\n";
  EXPECT_NE(lnx::error_of<ValueError>([&] { load_train_config(bad, {"train.steps=3"}); }).find("not a map of sections"),
            std::string::npos);
  std::ofstream(bad) << "model: 5\n";
  EXPECT_NE(lnx::error_of<ValueError>([&] {
              load_train_config(bad, {"model.d_model=32"});
            }).find("'model' is not a map in the config, so it has no key 'd_model'"),
            std::string::npos);
  fs::remove(bad);
  EXPECT_NE(lnx::error_of<IOError>([&] { load_train_config(::testing::TempDir(), {}); }).find("it is a directory"),
            std::string::npos);
  EXPECT_NE(lnx::error_of<IOError>([&] { load_train_config("/dev/zero", {}); }).find("not a regular file"),
            std::string::npos);
}

TEST(Trainer, AChatTemplateThatCannotBeReadIsRefusedBeforeTraining) {
  // Issue 14 (CLI sweep): data.chat_template naming a missing file, a directory or a device was
  // only read when the first checkpoint was written: an internal error after training.
  const std::string dir = ::testing::TempDir() + "lnx_bad_template_run";
  for (const std::string& t :
       {std::string("/no/such/template.jinja"), ::testing::TempDir(), std::string("/dev/null")}) {
    fs::remove_all(dir);
    TrainConfig c = load_train_config(
        "", {"model.preset=attention-tiny", "train.steps=1", "data.builtin_bytes=20000", "train.batch_size=2",
             "train.seq_len=16", "train.sample_tokens=0", "data.chat_template=" + t});
    c.train.out_dir = dir;
    int steps = 0;
    TrainHooks hooks;
    hooks.after_step = [&](const StepMetrics&) { return ++steps > 0; };
    EXPECT_NE(lnx::error_of<IOError>([&] { train(c, hooks); }).find("cannot read '" + t + "'"), std::string::npos) << t;
    EXPECT_EQ(steps, 0) << t;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lnx::train
