// The README's model example, compiled and run as written (keep the two in step).
#include <gtest/gtest.h>

#include <filesystem>

#include "models/checkpoint.h"
#include "models/presets.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

TEST(ReadmeExample, ModelForwardContinueLossSaveLoad) {
  const std::string ckpt = ::testing::TempDir() + "lnx_readme_ckpt";
  std::filesystem::remove_all(ckpt);
  // --- README ---
  Generator gen(1);
  models::LMModel model(models::preset_config("hybrid-tiny"), /*seed=*/0);
  Tensor ids = randint({2, 128}, 0, 256, gen, DType::i64);  // [B, T]
  Tensor targets = randint({2, 128}, 0, 256, gen, DType::i64);
  models::ModelOutput out = model.forward(ids);  // logits [2, 128, 256], state
  Tensor next = randint({2, 1}, 0, 256, gen, DType::i64);
  models::ModelOutput step = model.forward(next, &out.state);  // continues both sequences
  Tensor loss = model.loss(ids, targets);
  loss.backward();  // grads on model.parameters()
  models::save_model(model, ckpt);
  auto back = models::load_model(ckpt);
  // --- end ---
  EXPECT_EQ(out.logits.shape(), (Shape{2, 128, 256}));
  EXPECT_EQ(step.state.seen, (std::vector<int64_t>{129, 129}));
  Tensor whole = model.forward(concat({ids, next}, 1)).logits;
  EXPECT_TRUE(all_close(step.logits, slice(whole, 1, 128, 129), 1e-5));
  EXPECT_NEAR(loss.item(), std::log(256.0), 0.1);  // a fresh model predicts near uniformly
  for (const auto& [name, p] : model.parameters()) EXPECT_TRUE(p.grad().defined()) << name;
  EXPECT_EQ(max_abs_error(back->forward(ids).logits, out.logits), 0.0);
  std::filesystem::remove_all(ckpt);
}

}  // namespace
}  // namespace lnx
