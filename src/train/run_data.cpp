#include "train/run_data.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "data/corpus.h"
#include "data/mqar.h"
#include "data/token_file.h"
#include "tensor/error.h"

namespace lnx::train {

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  LNX_CHECK(f.good(), IOError, "[train] cannot read the text file '{}'", path);
  std::ostringstream s;
  s << f.rdbuf();
  LNX_CHECK(!f.bad(), IOError, "[train] error while reading '{}'", path);
  return s.str();
}

// Entropy (nats) of the token frequencies: the loss of the best model that ignores context.
double unigram_entropy_nats(const std::vector<int32_t>& ids, int64_t vocab) {
  std::vector<double> count(static_cast<size_t>(vocab), 0.0);
  for (int32_t t : ids) count[static_cast<size_t>(t)] += 1;
  double h = 0;
  const double n = static_cast<double>(ids.size());
  for (double c : count)
    if (c > 0) h -= c / n * std::log(c / n);
  return h;
}

}  // namespace

RunData prepare_run_data(const TrainConfig& config, const std::string& run_dir, const std::string& tokenizer_path) {
  const DataConfig& d = config.data;
  const LoopConfig& t = config.train;
  RunData r;
  if (d.source == "mqar") {
    data::MqarConfig m;
    m.vocab_size = d.mqar_vocab_size;
    m.seq_len = t.seq_len;
    m.num_kv_pairs = d.mqar_num_kv_pairs;
    m.power_a = d.mqar_power_a;
    data::validate(m);
    const uint64_t seed = static_cast<uint64_t>(t.seed);
    // Validation draws from another seed stream than training, so the two never share sequences.
    r.train_batch = [m, b = t.batch_size, seed](int64_t i) { return data::mqar_batch(m, b, seed * 2 + 1, i); };
    r.val_batch = [m, b = t.batch_size, seed](int64_t i) { return data::mqar_batch(m, b, seed * 2 + 2, i); };
    r.vocab_size = m.vocab_size;
    r.mqar = true;
    r.description =
        fmt::format("MQAR: vocab {}, {} key-value pairs, sequences of {}", m.vocab_size, m.num_kv_pairs, m.seq_len);
    return r;
  }
  LNX_CHECK(d.source == "builtin" || d.source == "text", ValueError,
            "[train] data.source must be builtin, text or mqar, got '{}'", d.source);
  LNX_CHECK(d.source != "text" || !d.path.empty(), ValueError,
            "[train] data.source text needs data.path (a UTF-8 file)");
  const std::string text = d.source == "text" ? read_text_file(d.path)
                                              : data::builtin_corpus(d.builtin_bytes, static_cast<uint64_t>(t.seed));
  LNX_CHECK(!text.empty(), ValueError, "[train] the training text is empty");
  if (!tokenizer_path.empty())
    r.tokenizer = data::load_tokenizer(tokenizer_path);
  else if (d.tokenizer == "char")
    r.tokenizer = data::train_char_tokenizer(text);
  else if (d.tokenizer == "bpe")
    r.tokenizer = data::train_bpe_tokenizer(text, d.bpe_vocab_size);
  else
    r.tokenizer = data::load_tokenizer(d.tokenizer);
  const std::vector<int32_t> ids = r.tokenizer->encode(text);
  r.vocab_size = r.tokenizer->vocab_size();
  const data::TokenSplit split = data::prepare_token_files(ids, run_dir + "/data", d.val_fraction, r.vocab_size);
  r.train_tokens = split.train_tokens;
  r.val_tokens = split.val_tokens;
  LNX_CHECK(r.train_tokens > t.seq_len + 1, ValueError,
            "[train] {} training tokens cannot fill a window of seq_len {} + 1", r.train_tokens, t.seq_len);
  LNX_CHECK(r.val_tokens > t.seq_len + 1, ValueError,
            "[train] {} validation tokens (val_fraction {}) cannot fill a window of seq_len {} + 1", r.val_tokens,
            d.val_fraction, t.seq_len);
  r.unigram_entropy =
      unigram_entropy_nats(std::vector<int32_t>(ids.begin(), ids.begin() + r.train_tokens), r.vocab_size);
  auto train = std::make_shared<data::WindowSource>(data::TokenFile(split.train_path), t.batch_size, t.seq_len,
                                                    static_cast<uint64_t>(t.seed));
  auto val = std::make_shared<data::WindowSource>(data::TokenFile(split.val_path), t.batch_size, t.seq_len,
                                                  static_cast<uint64_t>(t.seed) + 1);
  r.train_batch = [train](int64_t i) { return train->batch(i); };
  r.val_batch = [val](int64_t i) { return val->batch(i); };
  r.description = fmt::format("{} text: {} training and {} validation tokens, {} tokenizer with {} tokens", d.source,
                              r.train_tokens, r.val_tokens, r.tokenizer->kind(), r.vocab_size);
  return r;
}

}  // namespace lnx::train
