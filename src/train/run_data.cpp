#include "train/run_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "data/chat_template.h"
#include "data/corpus.h"
#include "data/mqar.h"
#include "data/sft.h"
#include "data/token_file.h"
#include "io/read_file.h"
#include "tensor/error.h"

namespace lnx::train {

namespace {

// Text data has no size bound of its own: memory is the bound (the CLI reports running out).
std::string read_text_file(const std::string& path) { return io::read_file("train", path); }

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

std::shared_ptr<data::Tokenizer> make_tokenizer(const DataConfig& d, const std::string& text,
                                                const std::string& tokenizer_path) {
  if (!tokenizer_path.empty()) return data::load_tokenizer(tokenizer_path);
  if (d.tokenizer == "char") return data::train_char_tokenizer(text);
  if (d.tokenizer == "bpe") return data::train_bpe_tokenizer(text, d.bpe_vocab_size);
  return data::load_tokenizer(d.tokenizer);
}

// data.chat_template's text ("" when none), read and parsed up front: a template that cannot
// be read or parsed is refused before training, not when the first checkpoint is written.
std::string read_chat_template(const DataConfig& d) {
  if (d.chat_template.empty()) return "";
  const std::string source = io::read_file("train", d.chat_template, data::kMaxChatTemplateBytes);
  try {
    data::ChatTemplate parsed(source);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("[train] data.chat_template '{}': {}", d.chat_template, e.what()));
  }
  return source;
}

// Supervised fine-tuning examples: a seeded val_fraction of them held out.
RunData prepare_sft_data(const TrainConfig& config, const std::string& model_dir, const std::string& tokenizer_path) {
  const DataConfig& d = config.data;
  const LoopConfig& t = config.train;
  LNX_CHECK(!d.path.empty(), ValueError, "[train] data.source sft needs data.path (a JSON Lines file)");
  RunData r;
  r.tokenizer = make_tokenizer(d, read_text_file(d.path), tokenizer_path);
  r.vocab_size = r.tokenizer->vocab_size();
  data::ChatFormat chat = model_dir.empty() ? data::ChatFormat{} : data::load_chat_format(model_dir, r.tokenizer.get());
  if (!d.chat_template.empty()) {
    chat.chat_template.emplace(read_chat_template(d));  // checked: parses
    chat.template_origin = d.chat_template;
  }
  std::vector<data::SftExample> all =
      data::load_sft_examples(d.path, *r.tokenizer, &chat, chat.stop_ids.empty() ? -1 : chat.stop_ids[0]);
  LNX_CHECK(all.size() >= 2, ValueError, "[train] '{}' has {} example: SFT needs at least 2 (training and validation)",
            d.path, all.size());
  std::mt19937_64 rng(static_cast<uint64_t>(t.seed) * 7919 + 17);
  std::shuffle(all.begin(), all.end(), rng);
  const size_t n_val = std::clamp<size_t>(
      static_cast<size_t>(std::ceil(d.val_fraction * static_cast<double>(all.size()))), 1, all.size() - 1);
  std::vector<data::SftExample> val(all.end() - static_cast<std::ptrdiff_t>(n_val), all.end());
  all.resize(all.size() - n_val);
  const int64_t tokens = t.batch_size * t.seq_len;
  auto train = std::make_shared<data::SftSource>(std::move(all), tokens, t.seq_len, static_cast<uint64_t>(t.seed));
  auto held = std::make_shared<data::SftSource>(std::move(val), tokens, t.seq_len, static_cast<uint64_t>(t.seed) + 1);
  r.train_batch = [train](int64_t i) { return train->batch(i); };
  r.val_batch = [held](int64_t i) { return held->batch(i); };
  r.train_tokens = train->scored_tokens();
  r.val_tokens = held->scored_tokens();
  r.description = fmt::format(
      "SFT: {} training and {} validation examples ({} and {} scored tokens), packed {} tokens a batch; {} "
      "tokenizer with {} tokens{}",
      train->num_examples(), held->num_examples(), r.train_tokens, r.val_tokens, tokens, r.tokenizer->kind(),
      r.vocab_size, chat.chat_template ? ", chat template " + chat.template_origin : "");
  return r;
}

}  // namespace

RunData prepare_run_data(const TrainConfig& config, const std::string& run_dir, const std::string& model_dir,
                         const std::string& tokenizer_path) {
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
  r.chat_template = read_chat_template(d);
  LNX_CHECK(d.builtin_bytes >= 1024 && d.builtin_bytes <= (int64_t{1} << 30), ValueError,
            "[train] data.builtin_bytes must be 1024 … 2^30 (1 GiB), got {}", d.builtin_bytes);
  if (d.source == "sft") {
    RunData sft = prepare_sft_data(config, model_dir, tokenizer_path);
    sft.chat_template = r.chat_template;
    return sft;
  }
  LNX_CHECK(d.source == "builtin" || d.source == "text", ValueError,
            "[train] data.source must be builtin, text, sft or mqar, got '{}'", d.source);
  LNX_CHECK(d.source != "text" || !d.path.empty(), ValueError,
            "[train] data.source text needs data.path (a UTF-8 file)");
  const std::string text = d.source == "text" ? read_text_file(d.path)
                                              : data::builtin_corpus(d.builtin_bytes, static_cast<uint64_t>(t.seed));
  LNX_CHECK(!text.empty(), ValueError, "[train] the training text is empty");
  r.tokenizer = make_tokenizer(d, text, tokenizer_path);
  const std::vector<int32_t> ids = r.tokenizer->encode(text);
  r.vocab_size = r.tokenizer->vocab_size();
  // Invalid UTF-8 and characters the tokenizer lacks become <unk>: a text that is mostly <unk>
  // has nothing to learn (the loss goes to 0 on one token), so it is refused; some are noted.
  std::string unk_note;
  if (const auto unk = r.tokenizer->special_token("<unk>")) {
    const auto n_unk = std::count(ids.begin(), ids.end(), *unk);
    const double share = ids.empty() ? 0.0 : static_cast<double>(n_unk) / static_cast<double>(ids.size());
    LNX_CHECK(share <= 0.5, ValueError,
              "[train] {}: {:.0f}% of its {} tokens are <unk> (invalid UTF-8, or characters the tokenizer does not "
              "have): nothing to learn",
              d.source == "text" ? "'" + d.path + "'" : "the built-in corpus", 100 * share, ids.size());
    if (n_unk > 0)
      unk_note = fmt::format(" ({} of them, {:.2f}%, <unk>: invalid UTF-8 or characters the tokenizer lacks)", n_unk,
                             100 * share);
  }
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
  r.description = fmt::format("{} text: {} training and {} validation tokens{}, {} tokenizer with {} tokens", d.source,
                              r.train_tokens, r.val_tokens, unk_note, r.tokenizer->kind(), r.vocab_size);
  return r;
}

}  // namespace lnx::train
