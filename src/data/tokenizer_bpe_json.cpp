// Byte-level BPE <-> Hugging Face tokenizer.json.
//
// What is read (each alternative exactly as Hugging Face's tokenizers applies it):
// - normalizer: null, or {"type": "NFC"} (GPT-NeoX, Qwen2), or a Sequence of NFCs;
// - truncation null; padding null or BatchLongest (which never changes one text's ids);
// - pre_tokenizer: ByteLevel (add_prefix_space false, use_regex true: GPT-2's pattern), or a
//   Sequence of a Split (a regex this file recognises: the GPT-2, Llama-3 or Qwen2 pattern;
//   behavior "Isolated", invert false) and a ByteLevel with use_regex false;
// - post_processor: null, ByteLevel (offsets only: no ids), TemplateProcessing (its "single"
//   template: special tokens around the sequence $A, e.g. Llama-3's <|begin_of_text|>), or a
//   Sequence of those;
// - decoder: ByteLevel (its options only concern offsets);
// - model: BPE with vocab, merges ("left right" strings or [left, right] pairs),
//   ignore_merges; no dropout, byte fallback or subword affixes;
// - added_tokens with special, normalized, lstrip, rstrip and single_word.
// Anything else that would change encode or decode is refused with an IOError naming it
// (another regex is named by its text). save() writes the same structure back: the
// normalizer, pre-tokenizer, post-processor and decoder as they were read (a trained
// tokenizer: GPT-2's ByteLevel), the vocab, the merges and the added tokens.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "data/tokenizer_bpe_internal.h"
#include "tensor/error.h"

namespace lnx::data {

using ordered_json = nlohmann::ordered_json;
using json = nlohmann::json;

namespace {

// A stored part as written: "type" first, the other keys sorted (as they are read), at every
// level, so that saving what was loaded reproduces a saved file byte for byte.
ordered_json type_first(const json& value) {
  if (value.is_array()) {
    ordered_json out = ordered_json::array();
    for (const json& v : value) out.push_back(type_first(v));
    return out;
  }
  if (!value.is_object()) return ordered_json::parse(value.dump());
  ordered_json out = ordered_json::object();
  if (value.contains("type")) out["type"] = type_first(value["type"]);
  for (const auto& [key, v] : value.items())
    if (key != "type") out[key] = type_first(v);
  return out;
}

}  // namespace

void BpeTokenizer::save(const std::string& path) const {
  ordered_json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  ordered_json added = ordered_json::array();
  for (const BpeAddedToken& t : added_) {
    added.push_back({{"id", t.id},
                     {"content", t.content},
                     {"single_word", t.single_word},
                     {"lstrip", t.lstrip},
                     {"rstrip", t.rstrip},
                     {"normalized", t.normalized},
                     {"special", t.special}});
  }
  doc["added_tokens"] = std::move(added);
  const ordered_json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  const auto part = [&](const json& stored, const ordered_json& fallback) {
    return stored.is_null() ? fallback : type_first(stored);
  };
  doc["normalizer"] = part(settings_.normalizer, nullptr);
  doc["pre_tokenizer"] = part(settings_.pre_tokenizer, byte_level);
  doc["post_processor"] = part(settings_.post_processor, nullptr);
  doc["decoder"] = part(settings_.decoder, byte_level);
  ordered_json vocab = ordered_json::object();
  for (size_t id = 0; id < token_bytes_.size(); ++id) {
    // Ids that are only added tokens are spelled as their text, as Hugging Face writes the
    // special tokens of a trained tokenizer into the vocab.
    vocab[model_bytes_[id].empty() ? token_bytes_[id] : bytes_to_gpt2_text(model_bytes_[id])] = id;
  }
  ordered_json merges = ordered_json::array();
  for (const BpeMerge& m : merges_) {
    merges.push_back(bytes_to_gpt2_text(model_bytes_[static_cast<size_t>(m.left)]) + " " +
                     bytes_to_gpt2_text(model_bytes_[static_cast<size_t>(m.right)]));
  }
  doc["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", settings_.ignore_merges},
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
  void require_default(const json& obj, const std::string& where, const char* key, const json& allowed) const {
    if (!obj.contains(key) || obj[key].is_null() || obj[key] == allowed) return;
    fail(fmt::format("unsupported {}.{} = {} (only {} is implemented)", where, key, obj[key].dump(), allowed.dump()));
  }
  // A boolean field; absent or null gives fallback.
  bool flag(const json& obj, const std::string& where, const char* key, bool fallback) const {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    require(obj[key].is_boolean(), fmt::format("{}.{} must be a boolean, got {}", where, key, obj[key].dump()));
    return obj[key].get<bool>();
  }
  // The "type" of an object part.
  std::string type_of(const json& part, const std::string& where) const {
    require(part.is_object() && part.contains("type") && part["type"].is_string(),
            fmt::format("\"{}\" must be an object with a \"type\"", where));
    return part["type"].get<std::string>();
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

// null, NFC, or a Sequence of NFCs (an empty Sequence is no normalizer).
void read_normalizer(const Reader& r, const json& doc, BpeSettings& s) {
  if (!doc.contains("normalizer") || doc["normalizer"].is_null()) return;
  const json& normalizer = doc["normalizer"];
  const auto require_nfc = [&](const json& part, const std::string& where) {
    const std::string type = r.type_of(part, where);
    r.require(type == "NFC",
              fmt::format("unsupported {} type \"{}\" (only null and NFC are implemented)", where, type));
    s.nfc = true;
  };
  if (r.type_of(normalizer, "normalizer") == "Sequence") {
    r.require(normalizer.contains("normalizers") && normalizer["normalizers"].is_array(),
              "normalizer Sequence needs a \"normalizers\" array");
    for (const json& part : normalizer["normalizers"]) require_nfc(part, "normalizer");
  } else {
    require_nfc(normalizer, "normalizer");
  }
  s.normalizer = normalizer;
}

// A ByteLevel pre-tokenizer: add_prefix_space false; returns use_regex.
bool read_byte_level_pre(const Reader& r, const json& part, const std::string& where) {
  // Hugging Face's ByteLevel defaults add_prefix_space to true when the key is absent.
  r.require(part.contains("add_prefix_space") && part["add_prefix_space"] == false,
            fmt::format("unsupported {}.add_prefix_space (only false is implemented)", where));
  return r.flag(part, where, "use_regex", true);
}

void read_pre_tokenizer(const Reader& r, const json& doc, BpeSettings& s) {
  r.require(doc.contains("pre_tokenizer"), "missing \"pre_tokenizer\"");
  const json& pre = doc["pre_tokenizer"];
  const std::string type = r.type_of(pre, "pre_tokenizer");
  s.pre_tokenizer = pre;
  if (type == "ByteLevel") {
    r.require(read_byte_level_pre(r, pre, "pre_tokenizer"),
              "unsupported pre_tokenizer.use_regex = false on its own (only after a Split is it implemented)");
    s.pattern = SplitPattern::Gpt2;
    return;
  }
  r.require(type == "Sequence", fmt::format("unsupported pre_tokenizer type \"{}\" (only ByteLevel, and a Sequence of "
                                            "Split and ByteLevel, are implemented)",
                                            type));
  r.require(pre.contains("pretokenizers") && pre["pretokenizers"].is_array(),
            "pre_tokenizer Sequence needs a \"pretokenizers\" array");
  const json& parts = pre["pretokenizers"];
  const auto types = [&] {
    std::string list;
    for (const json& p : parts) list += (list.empty() ? "" : ", ") + r.type_of(p, "pre_tokenizer.pretokenizers[]");
    return list;
  };
  r.require(parts.size() == 2 && r.type_of(parts[0], "pre_tokenizer.pretokenizers[0]") == "Split" &&
                r.type_of(parts[1], "pre_tokenizer.pretokenizers[1]") == "ByteLevel",
            fmt::format("unsupported pre_tokenizer Sequence [{}] (only [Split, ByteLevel] is implemented)", types()));
  const json& split = parts[0];
  r.require(split.contains("pattern") && split["pattern"].is_object(),
            "pre_tokenizer Split needs a \"pattern\" object");
  const json& pattern = split["pattern"];
  r.require(
      pattern.contains("Regex") && pattern["Regex"].is_string(),
      fmt::format("unsupported pre_tokenizer Split pattern {} (only a \"Regex\" is implemented)", pattern.dump()));
  const std::string regex = pattern["Regex"].get<std::string>();
  const std::optional<SplitPattern> known = recognise_split_pattern(regex);
  r.require(known.has_value(),
            fmt::format("unsupported pre_tokenizer Split regex {} (implemented: the GPT-2, Llama-3 and Qwen2 "
                        "patterns, each as written in their tokenizer.json)",
                        json(regex).dump()));
  r.require(split.contains("behavior") && split["behavior"] == "Isolated",
            fmt::format("unsupported pre_tokenizer Split behavior {} (only \"Isolated\" is implemented)",
                        split.contains("behavior") ? split["behavior"].dump() : "(none)"));
  r.require_default(split, "pre_tokenizer Split", "invert", false);
  r.require(!read_byte_level_pre(r, parts[1], "pre_tokenizer ByteLevel"),
            "unsupported pre_tokenizer ByteLevel use_regex = true after a Split (only false is implemented)");
  s.pattern = *known;
}

// The special tokens of a TemplateProcessing's "single" template, before and after $A.
void read_template(const Reader& r, const json& post, BpeSettings& s,
                   const std::unordered_map<std::string, int32_t>& id_of_added) {
  r.require(post.contains("single") && post["single"].is_array(), "post_processor TemplateProcessing needs \"single\"");
  const json empty = json::object();
  const json& specials =
      post.contains("special_tokens") && post["special_tokens"].is_object() ? post["special_tokens"] : empty;
  bool seen_sequence = false;
  for (const json& item : post["single"]) {
    if (item.is_object() && item.contains("Sequence")) {
      r.require(
          !seen_sequence && item["Sequence"].is_object() && item["Sequence"].value("id", "") == "A",
          fmt::format("unsupported post_processor single template item {} (one sequence $A is expected)", item.dump()));
      seen_sequence = true;
      continue;
    }
    r.require(item.is_object() && item.contains("SpecialToken") && item["SpecialToken"].is_object() &&
                  item["SpecialToken"].contains("id") && item["SpecialToken"]["id"].is_string(),
              fmt::format("unsupported post_processor single template item {}", item.dump()));
    const std::string name = item["SpecialToken"]["id"].get<std::string>();
    std::vector<int32_t> ids;
    if (specials.contains(name)) {
      const json& entry = specials[name];
      r.require(entry.is_object() && entry.contains("ids") && entry["ids"].is_array(),
                fmt::format("post_processor special token \"{}\" needs \"ids\"", name));
      for (const json& id : entry["ids"]) {
        r.require(id.is_number_integer(), fmt::format("post_processor special token \"{}\" has a bad id", name));
        ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
    } else {
      const auto it = id_of_added.find(name);
      r.require(it != id_of_added.end(),
                fmt::format("post_processor template names \"{}\", which is not a special token", name));
      ids.push_back(it->second);
    }
    std::vector<int32_t>& target = seen_sequence ? s.suffix_ids : s.prefix_ids;
    target.insert(target.end(), ids.begin(), ids.end());
  }
  r.require(seen_sequence, "post_processor single template has no sequence $A");
}

void read_post_processor(const Reader& r, const json& doc, BpeSettings& s,
                         const std::unordered_map<std::string, int32_t>& id_of_added) {
  if (!doc.contains("post_processor") || doc["post_processor"].is_null()) return;
  const json& post = doc["post_processor"];
  s.post_processor = post;
  const auto one = [&](const json& p, const std::string& where) {
    const std::string type = r.type_of(p, where);
    if (type == "ByteLevel") return;  // offsets only
    r.require(
        type == "TemplateProcessing",
        fmt::format("unsupported {} type \"{}\" (only ByteLevel and TemplateProcessing are implemented)", where, type));
    r.require(s.prefix_ids.empty() && s.suffix_ids.empty(), "only one TemplateProcessing post_processor is supported");
    read_template(r, p, s, id_of_added);
  };
  if (r.type_of(post, "post_processor") != "Sequence") return one(post, "post_processor");
  r.require(post.contains("processors") && post["processors"].is_array(), "post_processor.processors must be an array");
  for (const json& p : post["processors"]) one(p, "post_processor.processors[]");
}

}  // namespace

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const json& doc, const std::string& path) {
  const Reader r(path);
  const json& model = doc["model"];
  r.require(model.is_object(), "\"model\" must be an object");
  r.require(model.contains("type") && model["type"].is_string(), "model.type must be a string");
  r.require(model["type"] == "BPE",
            fmt::format("unsupported model.type {} (only BPE is implemented)", model["type"].dump()));
  r.require(!doc.contains("truncation") || doc["truncation"].is_null(),
            "unsupported \"truncation\" (only null is implemented)");
  // Padding to the longest of a batch never changes one text's ids (save() drops it); any
  // other padding would.
  if (doc.contains("padding") && !doc["padding"].is_null()) {
    const json& padding = doc["padding"];
    r.require(padding.is_object() && padding.value("strategy", json()) == "BatchLongest" &&
                  (!padding.contains("pad_to_multiple_of") || padding["pad_to_multiple_of"].is_null()),
              fmt::format("unsupported \"padding\" {} (only null, or BatchLongest without pad_to_multiple_of, "
                          "is implemented)",
                          padding.dump()));
  }
  BpeSettings settings;
  read_normalizer(r, doc, settings);
  read_pre_tokenizer(r, doc, settings);
  r.require(doc.contains("decoder"), "missing \"decoder\"");
  const std::string decoder = r.type_of(doc["decoder"], "decoder");
  r.require(decoder == "ByteLevel",
            fmt::format("unsupported decoder type \"{}\" (only ByteLevel is implemented)", decoder));
  settings.decoder = doc["decoder"];
  r.require_default(model, "model", "dropout", nullptr);
  r.require_default(model, "model", "continuing_subword_prefix", "");
  r.require_default(model, "model", "end_of_word_suffix", "");
  r.require_default(model, "model", "byte_fallback", false);
  settings.ignore_merges = r.flag(model, "model", "ignore_merges", false);

  // Vocabulary: spelled string -> id; ids must be distinct and cover [0, N).
  r.require(model.contains("vocab") && model["vocab"].is_object(), "model.vocab must be an object");
  const json empty = json::array();
  const json& added_json = doc.contains("added_tokens") && !doc["added_tokens"].is_null() ? doc["added_tokens"] : empty;
  r.require(added_json.is_array(), "\"added_tokens\" must be an array");
  // Ids must cover [0, N) with N at most the number of entries, so a larger id is an error
  // caught before it can size any table.
  const int64_t max_ids = std::min<int64_t>(kMaxVocab, static_cast<int64_t>(model["vocab"].size() + added_json.size()));
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

  // Added tokens: matched in text as wholes. Their id may also be a vocab entry spelled as
  // their text (GPT-2's "<|endoftext|>", GPT-NeoX's runs of spaces).
  std::vector<BpeAddedToken> added;
  std::unordered_map<std::string, int32_t> id_of_added;
  for (const json& t : added_json) {
    r.require(t.is_object() && t.contains("id") && t["id"].is_number_integer() && t.contains("content") &&
                  t["content"].is_string() && !t["content"].get<std::string>().empty(),
              fmt::format("added token {} needs an integer \"id\" and a non-empty \"content\"", t.dump()));
    BpeAddedToken a;
    const int64_t id = t["id"].get<int64_t>();
    a.content = t["content"].get<std::string>();
    const std::string where = fmt::format("added token \"{}\"", a.content);
    r.require(id >= 0 && id < max_ids, fmt::format("{} has id {} outside [0, {})", where, id, max_ids));
    a.id = static_cast<int32_t>(id);
    a.special = r.flag(t, where, "special", false);
    a.single_word = r.flag(t, where, "single_word", false);
    a.lstrip = r.flag(t, where, "lstrip", false);
    a.rstrip = r.flag(t, where, "rstrip", false);
    // Hugging Face's default: special tokens are not normalized, the others are.
    a.normalized = r.flag(t, where, "normalized", !a.special);
    const auto found = id_of_spelled.find(a.content);
    r.require(
        found == id_of_spelled.end() || found->second == id,
        fmt::format("{} has id {} but vocab id {}", where, id, found == id_of_spelled.end() ? -1 : found->second));
    r.require(id_of_added.emplace(a.content, a.id).second,
              fmt::format("added token \"{}\" (id {}) is listed twice", a.content, id));
    for (const BpeAddedToken& other : added)
      r.require(other.id != a.id, fmt::format("added token \"{}\" (id {}) is listed twice", a.content, id));
    if (static_cast<size_t>(id) >= spelled_of_id.size()) spelled_of_id.resize(static_cast<size_t>(id) + 1, nullptr);
    added.push_back(std::move(a));
  }
  std::vector<bool> is_added(spelled_of_id.size(), false);
  for (const BpeAddedToken& a : added) is_added[static_cast<size_t>(a.id)] = true;

  // BPE bytes of every vocab entry (an added token's id spelled outside the byte-level
  // alphabet, e.g. as its own text, is no BPE token).
  std::vector<std::string> model_bytes(spelled_of_id.size());
  std::unordered_map<std::string, int32_t> id_of_bytes;
  std::array<int32_t, 256> byte_ids;
  byte_ids.fill(-1);
  for (size_t id = 0; id < spelled_of_id.size(); ++id) {
    if (spelled_of_id[id] == nullptr) {
      r.require(is_added[id],
                fmt::format("ids must cover 0..{} without gaps, but {} is missing", spelled_of_id.size() - 1, id));
      continue;
    }
    if (is_added[id]) {
      const std::optional<std::string> bytes = gpt2_text_to_bytes(*spelled_of_id[id]);
      if (!bytes.has_value() || bytes->empty()) continue;
      model_bytes[id] = *bytes;
    } else {
      model_bytes[id] = r.bytes_of(*spelled_of_id[id]);
    }
    // The first id of a byte string is the one merges and ignore_merges produce.
    id_of_bytes.emplace(model_bytes[id], static_cast<int32_t>(id));
    if (model_bytes[id].size() == 1 && byte_ids[static_cast<uint8_t>(model_bytes[id][0])] < 0)
      byte_ids[static_cast<uint8_t>(model_bytes[id][0])] = static_cast<int32_t>(id);
  }
  for (int b = 0; b < 256; ++b)
    r.require(byte_ids[static_cast<size_t>(b)] >= 0,
              fmt::format("the vocab lacks the single-byte token for byte 0x{:02X}", b));
  // An added token on a vocab id must be that entry's text (Hugging Face gives an added token
  // the vocab id of its text, or a new id after the vocab).
  for (const BpeAddedToken& a : added) {
    const std::string* spelled = spelled_of_id[static_cast<size_t>(a.id)];
    r.require(spelled == nullptr || *spelled == a.content,
              fmt::format("added token \"{}\" has id {}, which the vocab gives to \"{}\"", a.content, a.id,
                          spelled ? *spelled : ""));
  }
  read_post_processor(r, doc, settings, id_of_added);
  for (const int32_t id : settings.prefix_ids)
    r.require(id >= 0 && static_cast<size_t>(id) < model_bytes.size(),
              fmt::format("post_processor id {} is outside the vocabulary", id));
  for (const int32_t id : settings.suffix_ids)
    r.require(id >= 0 && static_cast<size_t>(id) < model_bytes.size(),
              fmt::format("post_processor id {} is outside the vocabulary", id));

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
    r.require(l != id_of_spelled.end() && rt != id_of_spelled.end() &&
                  !model_bytes[static_cast<size_t>(l->second)].empty() &&
                  !model_bytes[static_cast<size_t>(rt->second)].empty(),
              fmt::format("merge \"{} {}\" references a token not in the vocab", left, right));
    const std::string merged =
        model_bytes[static_cast<size_t>(l->second)] + model_bytes[static_cast<size_t>(rt->second)];
    r.require(id_of_bytes.count(merged) > 0,
              fmt::format("merge \"{} {}\" makes \"{}{}\", which is not in the vocab", left, right, left, right));
    const uint64_t key = (static_cast<uint64_t>(l->second) << 32) | static_cast<uint32_t>(rt->second);
    r.require(seen_pairs.insert(key).second, fmt::format("merge \"{} {}\" is listed twice", left, right));
    merges.push_back({l->second, rt->second});
  }
  return std::make_unique<BpeTokenizer>(std::move(model_bytes), byte_ids, merges, std::move(added),
                                        std::move(settings));
}

}  // namespace detail
}  // namespace lnx::data
