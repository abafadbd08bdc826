// Chat templates: the Jinja templates Hugging Face model directories carry (tokenizer_config.json
// "chat_template", or chat_template.jinja) that turn a conversation into the model's prompt
// text, rendered as transformers' apply_chat_template renders them (jinja2 with trim_blocks and
// lstrip_blocks, loop controls, its tojson, raise_exception, strftime_now, namespace).
//
// The Jinja subset (enough for the templates of Llama-3, Qwen2/2.5/3, ChatML and similar):
//   text, {{ expr }}, {% stmt %}, {# comment #}, whitespace control ({%- -%} {{- -}} {%+ +%}),
//   {% raw %}; if/elif/else, for (tuple targets, `if` filter, else, loop.index/index0/revindex/
//   revindex0/first/last/length/previtem/nextitem/cycle), break/continue, set (names, tuples,
//   namespace attributes, {% set x %}...{% endset %}), {% generation %} (rendered as is);
//   literals (strings with Python escapes, ints, floats, true/false/none, lists, tuples,
//   dicts), attribute and subscript access, slices ([a:b:c], negative indices), calls with
//   keyword arguments, and/or/not, comparisons (chained), in / not in, + - * / // % ** ~,
//   a if b else c;
//   filters: trim upper lower capitalize title replace join length count first last list
//   string safe escape reverse default/d tojson items sort unique max min int float abs sum
//   select reject selectattr rejectattr map dictsort indent;
//   tests: defined undefined none string number integer float boolean true false mapping
//   sequence iterable callable odd even divisibleby eq/equalto/sameas ne lt le gt ge in upper
//   lower;
//   str methods: startswith endswith strip lstrip rstrip split rsplit upper lower title
//   capitalize replace find count join splitlines format isdigit isalpha isalnum isspace
//   isupper islower; dict methods: items keys values get;
//   globals: range dict namespace raise_exception strftime_now.
// Not supported, each a ValueError naming the construct with its line and column: macros,
// call/filter blocks, include/import/extends/block, recursive loops, *args/**kwargs, '%'
// string formatting, unknown filters, tests and tags. Case mapping (upper, lower, title) is
// ASCII only. raise_exception(message) fails the rendering with a ValueError holding message.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lnx::data {

class Tokenizer;

namespace jinja {
struct Node;
}

// Chat template files larger than this are refused (real ones are a few KB).
inline constexpr uint64_t kMaxChatTemplateBytes = uint64_t{16} << 20;

class ChatTemplate {
 public:
  // Parses the template; a syntax error or a construct outside the subset raises ValueError
  // naming it, its line and its column.
  explicit ChatTemplate(std::string_view source);

  // Renders with the given variables, a JSON object (messages, add_generation_prompt,
  // bos_token, ...). Errors raise ValueError with the line and column of the construct.
  std::string render(const nlohmann::ordered_json& variables) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::shared_ptr<const std::vector<std::unique_ptr<jinja::Node>>> body_;
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

// What a model directory says about chatting with it.
struct ChatFormat {
  std::optional<ChatTemplate> chat_template;
  std::string template_origin;  // the file it came from ("" without a template)
  // tokenizer_config.json's special token strings ("" when absent or null), passed to the
  // template as bos_token, eos_token, unk_token, pad_token.
  std::string bos_token, eos_token, unk_token, pad_token;
  // Generation ends at any of these ids: generation_config.json's eos_token_id (an int or a
  // list; config.json's when generation_config.json has none), and the id of eos_token.
  std::vector<int32_t> stop_ids;

  // The template rendered for messages, with add_generation_prompt, the special token
  // strings, tools = none, and extra (a JSON object of more variables, e.g. enable_thinking).
  // Requires chat_template.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;
};

// Reads dir/chat_template.jinja or the "chat_template" of dir/tokenizer_config.json (a string,
// or a list of {"name", "template"} of which "default" is taken), the special token strings
// of tokenizer_config.json, and the eos ids; missing files mean no template, no tokens, no ids.
// tokenizer (may be null) maps eos_token to its id. Malformed files raise IOError naming them;
// a template that does not parse raises ValueError naming the file.
ChatFormat load_chat_format(const std::string& dir, const Tokenizer* tokenizer);

}  // namespace lnx::data
