// Byte-level BPE <-> Hugging Face tokenizer.json. What is written: model.type "BPE" with vocab
// (GPT-2 byte-level spellings -> id) and merges ("left right" strings), a ByteLevel
// pre_tokenizer (add_prefix_space false, use_regex true), a ByteLevel decoder, and
// added_tokens for the specials. What is read: the same, plus what GPT-2's own file holds
// (a ByteLevel post_processor, empty subword prefix/suffix strings, merges as [left, right]
// pairs from newer writers). Anything that would change encode or decode in ways not
// implemented here (normalizers, other pre-tokenizers, templates, dropout, padding, ...) is
// refused with an IOError naming it.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "data/tokenizer_bpe_internal.h"
#include "tensor/error.h"

namespace lnx::data {

using ordered_json = nlohmann::ordered_json;
using json = nlohmann::json;

void BpeTokenizer::save(const std::string& path) const {
  ordered_json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  ordered_json added = ordered_json::array();
  for (const auto& [text, id] : specials_) {
    added.push_back({{"id", id},
                     {"content", text},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  doc["added_tokens"] = std::move(added);
  doc["normalizer"] = nullptr;
  const ordered_json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  doc["pre_tokenizer"] = byte_level;
  doc["post_processor"] = nullptr;
  doc["decoder"] = byte_level;
  ordered_json vocab = ordered_json::object();
  for (size_t id = 0; id < token_bytes_.size(); ++id) {
    // Specials are spelled as their text, as Hugging Face writes them into the vocab.
    vocab[is_special_[id] ? token_bytes_[id] : bytes_to_gpt2_text(token_bytes_[id])] = id;
  }
  ordered_json merges = ordered_json::array();
  for (const BpeMerge& m : merges_) {
    merges.push_back(bytes_to_gpt2_text(token_bytes_[static_cast<size_t>(m.left)]) + " " +
                     bytes_to_gpt2_text(token_bytes_[static_cast<size_t>(m.right)]));
  }
  doc["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", ignore_merges_},
                  {"vocab", std::move(vocab)},
                  {"merges", std::move(merges)}};
  detail::write_text_atomic(path, doc.dump(1) + "\n");
}

namespace detail {
namespace {

constexpr int64_t kMaxVocab = int64_t{1} << 24;

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw IOError(fmt::format("[bpe_tokenizer] '{}': {}", path_, what));
  }
  void require(bool ok, const std::string& what) const {
    if (!ok) fail(what);
  }
  // Field `key` of obj, which must be absent/null or equal `allowed` (or, when allowed is
  // a string, also "" or null).
  void require_default(const json& obj, const char* where, const char* key, const json& allowed) const {
    if (!obj.contains(key) || obj[key].is_null() || obj[key] == allowed) return;
    fail(fmt::format("unsupported {}.{} = {} (only {} is implemented)", where, key, obj[key].dump(), allowed.dump()));
  }
  void require_byte_level(const json& doc, const char* key, bool allow_null) const {
    require(doc.contains(key), fmt::format("missing \"{}\"", key));
    const json& part = doc[key];
    if (part.is_null() && allow_null) return;
    require(part.is_object() && part.contains("type") && part["type"].is_string(),
            fmt::format("\"{}\" must be an object with a \"type\"", key));
    require(part["type"] == "ByteLevel",
            fmt::format("unsupported {} type {} (only ByteLevel is implemented)", key, part["type"].dump()));
  }
  // The id spelled by a byte-level vocabulary string, checked.
  std::string bytes_of(const std::string& spelled) const {
    const std::optional<std::string> bytes = gpt2_text_to_bytes(spelled);
    require(bytes.has_value() && !bytes->empty(),
            fmt::format("vocab entry \"{}\" is not a byte-level (GPT-2 alphabet) string", spelled));
    return *bytes;
  }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const json& doc, const std::string& path) {
  const Reader r(path);
  const json& model = doc["model"];
  r.require(model.is_object(), "\"model\" must be an object");
  r.require(model.contains("type") && model["type"].is_string(), "model.type must be a string");
  r.require(model["type"] == "BPE",
            fmt::format("unsupported model.type {} (only BPE is implemented)", model["type"].dump()));
  for (const char* key : {"truncation", "padding", "normalizer"}) {
    r.require(!doc.contains(key) || doc[key].is_null(),
              fmt::format("unsupported \"{}\" (only null is implemented)", key));
  }
  r.require_byte_level(doc, "pre_tokenizer", false);
  const json& pre = doc["pre_tokenizer"];
  // Hugging Face's ByteLevel defaults add_prefix_space to true when the key is absent.
  r.require(pre.contains("add_prefix_space") && pre["add_prefix_space"] == false,
            "unsupported pre_tokenizer.add_prefix_space (only false is implemented)");
  r.require_default(pre, "pre_tokenizer", "use_regex", true);
  r.require_byte_level(doc, "decoder", false);
  if (doc.contains("post_processor")) r.require_byte_level(doc, "post_processor", true);
  r.require_default(model, "model", "dropout", nullptr);
  r.require_default(model, "model", "continuing_subword_prefix", "");
  r.require_default(model, "model", "end_of_word_suffix", "");
  r.require_default(model, "model", "byte_fallback", false);
  bool ignore_merges = false;
  if (model.contains("ignore_merges")) {
    r.require(model["ignore_merges"].is_boolean(), "model.ignore_merges must be a boolean");
    ignore_merges = model["ignore_merges"].get<bool>();
  }

  // Vocabulary: spelled string -> id; ids must be distinct and cover [0, N).
  r.require(model.contains("vocab") && model["vocab"].is_object(), "model.vocab must be an object");
  const json empty = json::array();
  const json& added = doc.contains("added_tokens") && !doc["added_tokens"].is_null() ? doc["added_tokens"] : empty;
  r.require(added.is_array(), "\"added_tokens\" must be an array");
  // Ids must cover [0, N) with N at most the number of entries, so a larger id is an error
  // caught before it can size any table.
  const int64_t max_ids = std::min<int64_t>(kMaxVocab, static_cast<int64_t>(model["vocab"].size() + added.size()));
  std::unordered_map<std::string, int32_t> id_of_spelled;
  std::vector<const std::string*> spelled_of_id;
  for (const auto& [spelled, id_json] : model["vocab"].items()) {
    r.require(id_json.is_number_integer() && id_json.get<int64_t>() >= 0 && id_json.get<int64_t>() < max_ids,
              fmt::format("vocab entry \"{}\" has id {}, expected an integer in [0, {}) (ids must cover "
                          "0..N-1 without gaps, N = vocab plus added tokens)",
                          spelled, id_json.dump(), max_ids));
    const auto id = static_cast<int32_t>(id_json.get<int64_t>());
    if (static_cast<size_t>(id) >= spelled_of_id.size()) spelled_of_id.resize(static_cast<size_t>(id) + 1, nullptr);
    r.require(spelled_of_id[static_cast<size_t>(id)] == nullptr,
              fmt::format("vocab ids must be distinct, but {} is used twice", id));
    const auto it = id_of_spelled.emplace(spelled, id).first;
    spelled_of_id[static_cast<size_t>(id)] = &it->first;
  }

  // Added tokens: matched in text as wholes; they may or may not also be in the vocab.
  std::vector<std::pair<std::string, int32_t>> specials;
  for (const json& t : added) {
    r.require(t.is_object() && t.contains("id") && t["id"].is_number_integer() && t.contains("content") &&
                  t["content"].is_string() && !t["content"].get<std::string>().empty(),
              fmt::format("added token {} needs an integer \"id\" and a non-empty \"content\"", t.dump()));
    for (const char* flag : {"single_word", "lstrip", "rstrip"}) r.require_default(t, "added_tokens[]", flag, false);
    const int64_t id = t["id"].get<int64_t>();
    const std::string content = t["content"].get<std::string>();
    r.require(id >= 0 && id < max_ids,
              fmt::format("added token \"{}\" has id {} outside [0, {})", content, id, max_ids));
    if (static_cast<size_t>(id) >= spelled_of_id.size()) spelled_of_id.resize(static_cast<size_t>(id) + 1, nullptr);
    const std::string* in_vocab = spelled_of_id[static_cast<size_t>(id)];
    r.require(in_vocab == nullptr || *in_vocab == content,
              fmt::format("added token \"{}\" has id {}, which the vocab gives to \"{}\"", content, id,
                          in_vocab ? *in_vocab : ""));
    const auto found = id_of_spelled.find(content);
    r.require(found == id_of_spelled.end() || found->second == id,
              fmt::format("added token \"{}\" has id {} but vocab id {}", content, id,
                          found == id_of_spelled.end() ? -1 : found->second));
    for (const auto& [text, other] : specials)
      r.require(text != content && other != id, fmt::format("added token \"{}\" (id {}) is listed twice", content, id));
    specials.emplace_back(content, static_cast<int32_t>(id));
  }

  // Bytes of every id: specials keep their text, vocab entries are decoded from GPT-2 spelling.
  std::vector<std::string> token_bytes(spelled_of_id.size());
  std::vector<bool> is_special(spelled_of_id.size(), false);
  for (const auto& [text, id] : specials) {
    token_bytes[static_cast<size_t>(id)] = text;
    is_special[static_cast<size_t>(id)] = true;
  }
  std::unordered_map<std::string, int32_t> id_of_bytes;
  std::array<int32_t, 256> byte_ids;
  byte_ids.fill(-1);
  for (size_t id = 0; id < spelled_of_id.size(); ++id) {
    if (is_special[id]) continue;
    r.require(spelled_of_id[id] != nullptr,
              fmt::format("ids must cover 0..{} without gaps, but {} is missing", spelled_of_id.size() - 1, id));
    token_bytes[id] = r.bytes_of(*spelled_of_id[id]);
    id_of_bytes.emplace(token_bytes[id], static_cast<int32_t>(id));
    if (token_bytes[id].size() == 1) byte_ids[static_cast<uint8_t>(token_bytes[id][0])] = static_cast<int32_t>(id);
  }
  for (int b = 0; b < 256; ++b)
    r.require(byte_ids[static_cast<size_t>(b)] >= 0,
              fmt::format("the vocab lacks the single-byte token for byte 0x{:02X}", b));

  // Merges: "left right" strings or [left, right] pairs of vocab entries whose concatenation
  // is also in the vocab.
  r.require(model.contains("merges") && model["merges"].is_array(), "model.merges must be an array");
  std::vector<BpeMerge> merges;
  std::unordered_set<uint64_t> seen_pairs;
  for (const json& m : model["merges"]) {
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      r.require(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                fmt::format("merge \"{}\" must be two tokens separated by one space", s));
      left = s.substr(0, space), right = s.substr(space + 1);
    } else {
      r.require(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                fmt::format("merge {} must be a \"left right\" string or a pair of strings", m.dump()));
      left = m[0].get<std::string>(), right = m[1].get<std::string>();
    }
    const auto l = id_of_spelled.find(left), rt = id_of_spelled.find(right);
    r.require(l != id_of_spelled.end() && rt != id_of_spelled.end() && !is_special[static_cast<size_t>(l->second)] &&
                  !is_special[static_cast<size_t>(rt->second)],
              fmt::format("merge \"{} {}\" references a token not in the vocab", left, right));
    const std::string merged =
        token_bytes[static_cast<size_t>(l->second)] + token_bytes[static_cast<size_t>(rt->second)];
    r.require(id_of_bytes.count(merged) > 0,
              fmt::format("merge \"{} {}\" makes \"{}{}\", which is not in the vocab", left, right, left, right));
    const uint64_t key = (static_cast<uint64_t>(l->second) << 32) | static_cast<uint32_t>(rt->second);
    r.require(seen_pairs.insert(key).second, fmt::format("merge \"{} {}\" is listed twice", left, right));
    merges.push_back({l->second, rt->second});
  }
  return std::make_unique<BpeTokenizer>(std::move(token_bytes), byte_ids, merges, std::move(specials), ignore_merges);
}

}  // namespace detail
}  // namespace lnx::data
