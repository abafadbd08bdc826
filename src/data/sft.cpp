#include "data/sft.h"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace lnx::data {

namespace {

using Json = nlohmann::ordered_json;

void append(SftExample& e, const std::vector<int32_t>& ids, bool scored) {
  e.ids.insert(e.ids.end(), ids.begin(), ids.end());
  e.scored.insert(e.scored.end(), ids.size(), scored ? 1 : 0);
}

std::string text_field(const Json& j, const char* key, const std::string& where) {
  LNX_CHECK(j.contains(key) && j[key].is_string(), ValueError, "[sft] {}: \"{}\" must be a string", where, key);
  return j[key].get<std::string>();
}

SftExample from_messages(const Json& j, const Tokenizer& tok, const ChatFormat* chat, const std::string& where) {
  LNX_CHECK(chat && chat->chat_template, ValueError,
            "[sft] {}: a \"messages\" example needs a chat template (the model directory's tokenizer_config.json "
            "or chat_template.jinja); give prompt/completion examples otherwise",
            where);
  LNX_CHECK(j["messages"].is_array() && !j["messages"].empty(), ValueError,
            "[sft] {}: \"messages\" must be a non-empty list", where);
  std::vector<ChatMessage> messages;
  for (const Json& m : j["messages"]) {
    LNX_CHECK(m.is_object(), ValueError, "[sft] {}: every message must be an object with role and content", where);
    messages.push_back({text_field(m, "role", where), text_field(m, "content", where)});
  }
  SftExample e;
  std::string done;  // the rendered text consumed so far
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant") continue;
    const std::vector<ChatMessage> before(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i));
    const std::vector<ChatMessage> through(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    const std::string prefix = chat->render(before, true), full = chat->render(through, false);
    LNX_CHECK(prefix.compare(0, done.size(), done) == 0 && full.compare(0, prefix.size(), prefix) == 0, ValueError,
              "[sft] {}: the chat template renders earlier turns differently once later ones follow, so the "
              "assistant's tokens cannot be told apart",
              where);
    append(e, tok.encode(prefix.substr(done.size())), false);
    append(e, tok.encode(full.substr(prefix.size())), true);
    done = full;
  }
  const std::string rest = chat->render(messages, false);
  if (rest.size() > done.size() && rest.compare(0, done.size(), done) == 0)
    append(e, tok.encode(rest.substr(done.size())), false);
  return e;
}

}  // namespace

std::vector<SftExample> load_sft_examples(const std::string& path, const Tokenizer& tok, const ChatFormat* chat,
                                          int32_t eos_id) {
  std::ifstream in(path);
  LNX_CHECK(in.good(), IOError, "[sft] cannot read '{}'", path);
  std::vector<SftExample> out;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{} line {}", path, number);
    Json j;
    try {
      j = Json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw ValueError(fmt::format("[sft] {}: not valid JSON: {}", where, e.what()));
    }
    LNX_CHECK(j.is_object() && (j.contains("messages") || (j.contains("prompt") && j.contains("completion"))),
              ValueError, "[sft] {}: expected {{\"prompt\", \"completion\"}} or {{\"messages\": [...]}}", where);
    SftExample e;
    if (j.contains("messages")) {
      e = from_messages(j, tok, chat, where);
    } else {
      append(e, tok.encode(text_field(j, "prompt", where)), false);
      append(e, tok.encode(text_field(j, "completion", where)), true);
      if (eos_id >= 0) append(e, {eos_id}, true);
    }
    // The first token is never a target (nothing predicts it).
    LNX_CHECK(std::count(e.scored.begin() + (e.scored.empty() ? 0 : 1), e.scored.end(), 1) > 0, ValueError,
              "[sft] {}: the example has no token to learn (an empty completion or no assistant message)", where);
    out.push_back(std::move(e));
  }
  LNX_CHECK(!out.empty(), ValueError, "[sft] '{}' holds no examples", path);
  return out;
}

SftSource::SftSource(std::vector<SftExample> examples, int64_t batch_tokens, int64_t max_len, uint64_t seed)
    : examples_(std::move(examples)),
      batch_tokens_(batch_tokens),
      max_len_(std::min(max_len, batch_tokens)),
      seed_(seed) {
  LNX_CHECK(!examples_.empty(), ValueError, "[sft] no examples");
  LNX_CHECK(batch_tokens >= 2 && max_len >= 2, ValueError, "[sft] batch_tokens ({}) and max_len ({}) must be >= 2",
            batch_tokens, max_len);
}

std::vector<std::vector<int64_t>> SftSource::bins_of_epoch(int64_t epoch) const {
  std::vector<int64_t> order(examples_.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed_ * 1000003 + static_cast<uint64_t>(epoch));
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::vector<int64_t>> bins(1);
  int64_t used = 0;
  for (int64_t i : order) {
    const int64_t len = std::min<int64_t>(static_cast<int64_t>(examples_[i].ids.size()), max_len_);
    if (used + len > batch_tokens_ && !bins.back().empty()) {
      bins.emplace_back();
      used = 0;
    }
    bins.back().push_back(i);
    used += len;
  }
  return bins;
}

Batch SftSource::batch(int64_t index) const {
  LNX_CHECK(index >= 0, ValueError, "[sft] batch index {} is negative", index);
  // Epochs have the same number of bins only by chance: walk them.
  int64_t epoch = 0, k = index;
  std::vector<std::vector<int64_t>> bins = bins_of_epoch(0);
  while (k >= static_cast<int64_t>(bins.size())) {
    k -= static_cast<int64_t>(bins.size());
    bins = bins_of_epoch(++epoch);
  }
  std::vector<int64_t> ids, targets, cu{0};
  for (int64_t i : bins[static_cast<size_t>(k)]) {
    const SftExample& e = examples_[static_cast<size_t>(i)];
    const int64_t len = std::min<int64_t>(static_cast<int64_t>(e.ids.size()), max_len_);
    for (int64_t t = 0; t < len; ++t) {
      ids.push_back(e.ids[t]);
      targets.push_back(t + 1 < len && e.scored[t + 1] ? e.ids[t + 1] : -100);
    }
    cu.push_back(cu.back() + len);
  }
  Batch b;
  const int64_t P = static_cast<int64_t>(ids.size());
  b.ids = from_vector(ids, {1, P});
  b.targets = from_vector(targets, {1, P});
  b.cu_seqlens = from_vector(cu, {static_cast<int64_t>(cu.size())});
  b.index = index;
  return b;
}

int64_t SftSource::scored_tokens() const {
  int64_t n = 0;
  for (const auto& e : examples_) n += std::count(e.scored.begin() + 1, e.scored.end(), 1);
  return n;
}

}  // namespace lnx::data
