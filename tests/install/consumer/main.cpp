// Uses the installed library the way the README shows: tensors and ops, then a model from a
// preset. Prints "consumer: ok" when every check holds; exits non-zero otherwise.
#include <cmath>
#include <cstdio>

#include "models/lm_model.h"
#include "models/presets.h"
#include "tensor/ops.h"

int main() {
  using namespace lnx;
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      std::printf("consumer: FAILED %s\n", what);
      ++failures;
    }
  };

  // ones [4, 8] · (2 · ones [8, 3]) = 16 everywhere; the sum over 12 entries is 192.
  const Tensor a = ones({4, 8}), b = full({8, 3}, 2.0);
  const Tensor c = matmul(a, b);
  check(c.size(0) == 4 && c.size(1) == 3, "matmul shape");
  check(sum(c).item() == 192.0, "sum of matmul");
  // Random inputs (the BLAS path): matmul agrees with a sum of products.
  Generator gen(0);
  const Tensor x = randn({16, 32}, gen), y = randn({32, 8}, gen);
  const double via_blas = sum(matmul(x, y)).item();
  const double via_ops = sum(mul(sum(x, {0}), sum(y, {1}))).item();
  check(std::abs(via_blas - via_ops) < 1e-3 * (1 + std::abs(via_ops)), "matmul against ops");

  // A model from a preset, forward on a batch of token ids.
  models::ModelConfig config = models::preset_config("hybrid-tiny");
  models::LMModel model(config, /*seed=*/0);
  const Tensor ids = randint({2, 16}, 0, config.vocab_size, gen, DType::i64);
  const Tensor logits = model.forward(ids).logits;
  check(logits.dim() == 3 && logits.size(0) == 2 && logits.size(1) == 16 && logits.size(2) == config.vocab_size,
        "logits shape");
  check(std::isfinite(sum(logits).item()), "finite logits");

  if (failures == 0)
    std::printf("consumer: ok (sum %.1f, %lld parameters)\n", sum(c).item(),
                static_cast<long long>(model.num_parameters()));
  return failures == 0 ? 0 : 1;
}
