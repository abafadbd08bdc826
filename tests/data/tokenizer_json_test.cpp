// Hugging Face tokenizer.json interop: a file with GPT-2's structure (vocab ids in GPT-2's
// byte order, "<|endoftext|>" in both vocab and added_tokens, ByteLevel post-processor, string
// merges) loads and encodes as GPT-2 would; merges as [left, right] pairs load too; malformed
// or unsupported files raise IOError naming the file and the problem.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "data/tokenizer_bpe_internal.h"
#include "tensor/error.h"
#include "tokenizer_test_util.h"

namespace lnx::data {
namespace {

using json = nlohmann::json;
using testing::ScratchDir;

// GPT-2's id order for the 256 byte tokens: the printable bytes first, then the 68 others.
std::vector<int> gpt2_byte_order() {
  std::vector<int> order;
  for (int b = 0; b < 256; ++b)
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) order.push_back(b);
  for (int b = 0; b < 256; ++b)
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) order.push_back(b);
  return order;
}

// A miniature of GPT-2's tokenizer.json: same fields and values, three merges.
json gpt2_like() {
  json vocab = json::object();
  const std::vector<int> order = gpt2_byte_order();
  for (size_t id = 0; id < order.size(); ++id)
    vocab[bytes_to_gpt2_text(std::string(1, static_cast<char>(order[id])))] = id;
  vocab["\xC4\xA0t"] = 256;  // "Ġt"
  vocab["he"] = 257;
  vocab["\xC4\xA0the"] = 258;  // "Ġthe"
  vocab["<|endoftext|>"] = 259;
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}};
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", json::array({{{"id", 259},
                                     {"content", "<|endoftext|>"},
                                     {"single_word", false},
                                     {"lstrip", false},
                                     {"rstrip", false},
                                     {"normalized", true},
                                     {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"vocab", vocab},
        {"merges", json::array({"\xC4\xA0 t", "h e", "\xC4\xA0t he"})}}},
  };
}

TEST(TokenizerJson, LoadsAFileWithGpt2sStructure) {
  const ScratchDir dir;
  const auto tok = load_tokenizer(dir.write("gpt2.json", gpt2_like().dump()));
  EXPECT_EQ(tok->kind(), "bpe");
  EXPECT_EQ(tok->vocab_size(), 260);
  EXPECT_EQ(tok->special_token("<|endoftext|>"), 259);
  // GPT-2 ids: '!' is 0, so 't' (0x74) is 83; ' ' is 220 and '\n' is 198, as in GPT-2.
  EXPECT_EQ(tok->encode(" the<|endoftext|>the"), (std::vector<int32_t>{258, 259, 83, 257}));
  EXPECT_EQ(tok->encode(" "), (std::vector<int32_t>{220}));
  EXPECT_EQ(tok->encode("\n"), (std::vector<int32_t>{198}));
  EXPECT_EQ(tok->decode({258, 259, 83, 257, 198}), " the<|endoftext|>the\n");
}

TEST(TokenizerJson, LoadsMergesWrittenAsPairs) {
  const ScratchDir dir;
  json doc = gpt2_like();
  doc["model"]["merges"] = json::array({{"\xC4\xA0", "t"}, {"h", "e"}, {"\xC4\xA0t", "he"}});
  const auto tok = load_tokenizer(dir.write("pairs.json", doc.dump()));
  EXPECT_EQ(tok->encode(" the the"), (std::vector<int32_t>{258, 258}));
}

TEST(TokenizerJson, IgnoreMergesTakesWholeVocabularyWords) {
  // "Ġhe" is in the vocab but no merge builds it: only ignore_merges reaches it.
  const ScratchDir dir;
  json doc = gpt2_like();
  doc["model"]["vocab"]["\xC4\xA0he"] = 260;
  EXPECT_EQ(load_tokenizer(dir.write("a.json", doc.dump()))->encode(" he"), (std::vector<int32_t>{220, 257}));
  doc["model"]["ignore_merges"] = true;
  EXPECT_EQ(load_tokenizer(dir.write("b.json", doc.dump()))->encode(" he"), (std::vector<int32_t>{260}));
}

struct BadCase {
  const char* name;
  std::function<void(json&)> mutate;
  const char* message_part;  // the error must name the problem
};

TEST(TokenizerJson, MalformedOrUnsupportedFilesRaiseIOError) {
  const BadCase cases[] = {
      {"wordpiece", [](json& d) { d["model"]["type"] = "WordPiece"; }, "WordPiece"},
      {"normalizer",
       [](json& d) {
         d["normalizer"] = {{"type", "NFKC"}};
       },
       "normalizer"},
      {"sequence",
       [](json& d) {
         d["pre_tokenizer"] = {{"type", "Sequence"}};
       },
       "Sequence"},
      {"prefix", [](json& d) { d["pre_tokenizer"]["add_prefix_space"] = true; }, "add_prefix_space"},
      {"no_regex", [](json& d) { d["pre_tokenizer"]["use_regex"] = false; }, "use_regex"},
      {"decoder", [](json& d) { d["decoder"] = nullptr; }, "decoder"},
      {"template",
       [](json& d) {
         d["post_processor"] = {{"type", "TemplateProcessing"}};
       },
       "TemplateProcessing"},
      {"dropout", [](json& d) { d["model"]["dropout"] = 0.1; }, "dropout"},
      {"padding",
       [](json& d) {
         d["padding"] = {{"length", 8}};
       },
       "padding"},
      {"no_vocab", [](json& d) { d["model"].erase("vocab"); }, "vocab"},
      {"vocab_type", [](json& d) { d["model"]["vocab"]["he"] = "257"; }, "he"},
      {"negative_id", [](json& d) { d["model"]["vocab"]["he"] = -1; }, "he"},
      {"missing_byte",
       [](json& d) {
         d["model"]["vocab"].erase("A");
         d["model"]["vocab"]["A!"] = 32;
       },
       "0x41"},
      {"duplicate_id", [](json& d) { d["model"]["vocab"]["\xC4\xA0the"] = 257; }, "257"},
      {"gap", [](json& d) { d["model"]["vocab"]["\xC4\xA0the"] = 260; }, "258 is missing"},
      {"huge_id", [](json& d) { d["model"]["vocab"]["\xC4\xA0the"] = 16000000; }, "16000000"},
      {"not_byte_level", [](json& d) { d["model"]["vocab"]["日"] = 260; }, "byte-level"},
      {"merges_type", [](json& d) { d["model"]["merges"].push_back(42); }, "42"},
      {"merge_unknown", [](json& d) { d["model"]["merges"].push_back("\xC4\xA0 zz"); }, "zz"},
      {"merge_result", [](json& d) { d["model"]["merges"].push_back("t h"); }, "not in the vocab"},
      {"merge_spaces", [](json& d) { d["model"]["merges"].push_back("\xC4\xA0 t h"); }, "one space"},
      {"merge_twice", [](json& d) { d["model"]["merges"].push_back("h e"); }, "twice"},
      {"added_id", [](json& d) { d["added_tokens"][0]["id"] = 5; }, "<|endoftext|>"},
      {"added_content", [](json& d) { d["added_tokens"][0]["content"] = 7; }, "content"},
      {"lstrip", [](json& d) { d["added_tokens"][0]["lstrip"] = 1; }, "lstrip"},
      {"model_type", [](json& d) { d["model"]["type"] = 3; }, "model.type"},
      {"no_model", [](json& d) { d.erase("model"); }, "neither"},
  };
  const ScratchDir dir;
  for (const BadCase& c : cases) {
    json doc = gpt2_like();
    c.mutate(doc);
    const std::string path = dir.write(std::string(c.name) + ".json", doc.dump());
    try {
      load_tokenizer(path);
      ADD_FAILURE() << c.name << " was accepted";
    } catch (const IOError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
      EXPECT_NE(msg.find(c.message_part), std::string::npos) << c.name << ": " << msg;
    }
  }
}

TEST(TokenizerJson, TruncatedAndNonJsonFilesRaiseIOError) {
  const ScratchDir dir;
  const std::string full = gpt2_like().dump();
  const std::string texts[] = {
      full.substr(0, full.size() / 2), full.substr(0, full.size() - 1), "", "not json", "[1, 2]", "null"};
  int i = 0;
  for (const std::string& text : texts) {
    const std::string path = dir.write(fmt::format("t{}.json", i++), text);
    EXPECT_THROW(load_tokenizer(path), IOError) << text.substr(0, 40);
  }
  EXPECT_THROW(load_tokenizer(dir.file("does_not_exist.json")), IOError);
}

TEST(TokenizerJson, SavedFileHasTheHuggingFaceFields) {
  const ScratchDir dir;
  const auto tok = train_bpe_tokenizer("low lower lowest", 260, {"<|endoftext|>"});
  tok->save(dir.file("t.json"));
  const json doc = json::parse(testing::read_file(dir.file("t.json")));
  EXPECT_EQ(doc["model"]["type"], "BPE");
  EXPECT_EQ(doc["pre_tokenizer"]["type"], "ByteLevel");
  EXPECT_EQ(doc["pre_tokenizer"]["add_prefix_space"], false);
  EXPECT_EQ(doc["decoder"]["type"], "ByteLevel");
  EXPECT_EQ(doc["model"]["vocab"]["\xC4\xA0"], 32);  // byte 0x20 spelled 'Ġ', id = byte value
  EXPECT_EQ(doc["model"]["vocab"]["<|endoftext|>"], 259);
  EXPECT_EQ(doc["added_tokens"][0]["content"], "<|endoftext|>");
  EXPECT_EQ(doc["added_tokens"][0]["special"], true);
  EXPECT_EQ(doc["model"]["merges"].size(), 3u);
  EXPECT_EQ(doc["model"]["merges"][0], "l o");
}

}  // namespace
}  // namespace lnx::data
