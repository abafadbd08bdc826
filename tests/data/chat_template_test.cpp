// Chat templates: the templates of tests/fixtures/tokenizers/chat_templates/ (ChatML, Llama-3,
// Qwen2.5 and Qwen3 style, strict alternation with a default system prompt, and one using every
// supported construct) render exactly what jinja2 set up as transformers sets it up renders
// (scripts/make_tokenizer_fixtures.py), raise_exception included; constructs outside the
// subset fail naming themselves and their position; a model directory's template, special
// tokens and eos ids load from tokenizer_config.json, chat_template.jinja and
// generation_config.json.
#include "data/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "tensor/error.h"
#include "tokenizer_test_util.h"

namespace lnx::data {
namespace {

using ojson = nlohmann::ordered_json;
using testing::ScratchDir;

std::string templates_dir() { return testing::tokenizer_fixtures() + "/chat_templates"; }

std::string render(std::string_view source, const ojson& vars = ojson::object()) {
  return ChatTemplate(source).render(vars);
}

// The error message of rendering (or parsing) source; "" when it succeeds.
std::string error_of(std::string_view source, const ojson& vars = ojson::object()) {
  try {
    render(source, vars);
  } catch (const ValueError& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplate, RendersLikeJinja2AsTransformersSetsItUp) {
  const ojson expected = ojson::parse(testing::read_file(templates_dir() + "/expected.json"));
  std::map<std::string, std::unique_ptr<ChatTemplate>> templates;
  size_t renders = 0, errors = 0;
  for (const ojson& c : expected["cases"]) {
    const std::string name = c["template"].get<std::string>();
    if (!templates.count(name))
      templates[name] = std::make_unique<ChatTemplate>(testing::read_file(templates_dir() + "/" + name + ".jinja"));
    ojson vars = expected["tokens"];
    vars["messages"] = expected["conversations"][c["conversation"].get<std::string>()];
    vars["add_generation_prompt"] = c["add_generation_prompt"];
    vars["tools"] = nullptr;
    vars["documents"] = nullptr;
    for (const auto& [key, value] : c["variables"].items()) vars[key] = value;
    const std::string what = name + " / " + c["conversation"].get<std::string>();
    if (c.contains("expected")) {
      ++renders;
      try {
        EXPECT_EQ(templates[name]->render(vars), c["expected"].get<std::string>()) << what;
      } catch (const ValueError& e) {
        ADD_FAILURE() << what << ": " << e.what();
      }
    } else {
      ++errors;
      try {
        templates[name]->render(vars);
        ADD_FAILURE() << what << " rendered, expected the error: " << c["error"];
      } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos) << e.what();
      }
    }
  }
  EXPECT_GE(renders, 35u);
  EXPECT_GE(errors, 3u);
}

TEST(ChatTemplate, WhitespaceControlTrimAndLstripBlocks) {
  EXPECT_EQ(render("a  {{- 'b' -}}  \n c"), "abc");
  // trim_blocks eats the newline after a block tag, lstrip_blocks the indentation before it.
  EXPECT_EQ(render("x\n  {% if true %}\n  y\n  {% endif %}\nz"), "x\n  y\nz");
  // {%+ keeps the indentation, +%} the newline; {{ }} never trims.
  EXPECT_EQ(render("  {%+ if true +%}\n{{ 1 }}\n{% endif %}"), "  \n1\n");
  // One trailing newline of the template is dropped, \r\n read as \n.
  EXPECT_EQ(render("a\r\nb\n"), "a\nb");
  EXPECT_EQ(render("{# a comment #}\n{#- another -#}  x"), "x");
  EXPECT_EQ(render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
}

TEST(ChatTemplate, ScopesFollowJinja) {
  // A loop iteration is a scope (set inside does not leak), an if is not; namespaces carry
  // values out of loops.
  EXPECT_EQ(render("{% set x = 0 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}"), "12|0");
  EXPECT_EQ(render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");
  EXPECT_EQ(
      render("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
      "6");
  EXPECT_EQ(render("{% set t %}in {{ 1 + 1 }}{% endset %}[{{ t }}]"), "[in 2]");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% generation %}kept{% endgeneration %}"), "kept");
}

TEST(ChatTemplate, VariablesComeFromJson) {
  const ojson vars = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"n", 2.5}, {"flag", true}};
  EXPECT_EQ(render("{{ messages[0].role }}:{{ messages[0]['content'] }} {{ n }} {{ flag }} {{ missing }}.", vars),
            "user:hi 2.5 True .");
}

TEST(ChatTemplate, RaiseExceptionFailsWithItsMessage) {
  const std::string msg = error_of("{{ raise_exception('Roles must alternate') }}");
  EXPECT_NE(msg.find("Roles must alternate"), std::string::npos) << msg;
}

TEST(ChatTemplate, UnsupportedConstructsFailNamingThemAndTheirPosition) {
  const std::pair<const char*, std::vector<const char*>> cases[] = {
      {"{% macro m() %}x{% endmacro %}", {"'{% macro %}'", "not supported", "line 1, column 4"}},
      {"a\n{% include 'x' %}", {"include", "line 2"}},
      {"{{ x | wordcount }}", {"unknown filter 'wordcount'", "line 1, column 8"}},
      {"{{ x is foo }}", {"unknown test 'foo'"}},
      {"{% if true %}x", {"expected {% elif %} or {% else %} or {% endif %}", "if opened at line 1"}},
      {"{% for x in y recursive %}{% endfor %}", {"recursive"}},
      {"{% endfor %}", {"unexpected '{% endfor %}'"}},
      {"{% frobnicate %}", {"unknown tag '{% frobnicate %}'"}},
      {"{{ f(*args) }}", {"'*'"}},
      {"{{ 'x' % 3 }}", {"'%' string formatting is not supported"}},
      {"{{ 1 +  }}", {"line 1, column 9", "unexpected the end of the tag"}},
      {"{{ 'unclosed }}", {"never closed"}},
      {"{{ (1 }}", {"line 1, column 7", "unexpected '}'"}},
      {"{{ x.y }}", {"'x' is undefined", "reading its attribute 'y'", "line 1, column 5"}},
      {"{{ 1 + 'a' }}", {"unsupported operand types for +: 'int' and 'str'"}},
      {"{% for x in 3 %}{% endfor %}", {"'int' object is not iterable"}},
      {"{{ 1 < 'a' }}", {"'<' not supported between 'int' and 'str'"}},
      {"{% break %}", {"'break' outside a for loop"}},
      {"{{ {'a': 1} | tojson | nope }}", {"unknown filter 'nope'"}},
      {"{{ x | tojson }}", {"Object of type undefined is not JSON serializable"}},
  };
  for (const auto& [source, parts] : cases) {
    const std::string msg = error_of(source);
    EXPECT_FALSE(msg.empty()) << source << " was accepted";
    for (const char* part : parts) EXPECT_NE(msg.find(part), std::string::npos) << source << ": " << msg;
  }
}

TEST(ChatTemplate, NestingAndExpressionSizeAreBounded) {
  // Issue 14 (CLI sweep): 5000 nested parentheses, a 100000-term sum and the like overflowed the
  // stack (parsing, rendering and freeing are recursive). Each is now a syntax error; the bounds
  // are far above what real templates use.
  auto repeat = [](const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  const std::pair<std::string, const char*> cases[] = {
      {"{{" + repeat("(", 400) + "1" + repeat(")", 400) + "}}", "expressions nested more than 128 deep"},
      {"{{" + repeat("[", 400) + repeat("]", 400) + "}}", "expressions nested more than 128 deep"},
      {"{{ " + repeat("not ", 400) + "1 }}", "expressions nested more than 128 deep"},
      {"{{ " + repeat("-", 400) + "1 }}", "expressions nested more than 128 deep"},
      {"{{ " + repeat("1 + ", 3000) + "1 }}", "an expression of more than 2048 parts"},
      {"{{ 1" + repeat(" | string", 3000) + " }}", "an expression of more than 2048 parts"},
      {"{{ 1" + repeat(" | string", 1200) + " }}", "an expression nested more than 128 deep"},  // found by fuzzing
      {"{{ " + repeat("1 + ", 200) + "1 }}", "an expression nested more than 128 deep"},
      {"{{ x" + repeat(".a", 200) + " }}", "an expression nested more than 128 deep"},
      {repeat("{% if true %}", 100) + "x" + repeat("{% endif %}", 100), "block tags nested more than 64 deep"},
  };
  for (const auto& [source, part] : cases) {
    const std::string msg = error_of(source);
    EXPECT_NE(msg.find(part), std::string::npos) << source.substr(0, 40) << ": " << msg;
  }
  // Real nesting well inside the bounds renders.
  EXPECT_EQ(render(repeat("{% if true %}", 20) + "x" + repeat("{% endif %}", 20)), "x");
  EXPECT_EQ(render("{{ " + repeat("(", 30) + "1" + repeat(")", 30) + " + " + repeat("1 + ", 90) + "1 }}"), "92");
}

TEST(ChatTemplate, ArithmeticAndSizesStayInRange) {
  // Issue 14 (second CLI sweep): these crashed (SIGFPE, SIGSEGV), escaped as internal errors or
  // ran out of memory.
  const std::pair<const char*, const char*> refused[] = {
      {"{{ (-9223372036854775807 - 1) // -1 }}", "integer overflow in //"},
      {"{{ 9223372036854775807 + 1 }}", "integer overflow in +"},
      {"{{ 4611686018427387904 * 4 }}", "integer overflow in *"},
      {"{{ 3 ** 100 }}", "integer overflow in **"},
      {"{{ 'ab' * 4611686018427387904 }}", "a repetition this long is refused"},
      {"{{ [1, 2] * 4611686018427387904 }}", "a repetition this long is refused"},
      {"{{ strftime_now('%Y' * 100) }}", "longer than 128 characters"},
      {"{{ messages | tojson(indent=10000000000) }}", "indent is larger than 64"},
      {"{{ 'a\nb' | indent(10000000000) }}", "width is larger than 256"},
  };
  for (const auto& [source, part] : refused) {
    const std::string msg = error_of(source, ojson{{"messages", ojson::array()}});
    EXPECT_NE(msg.find(part), std::string::npos) << source << ": " << msg;
  }
  EXPECT_EQ(render("{{ (-9223372036854775807 - 1) % -1 }} {{ (-9223372036854775807 - 1) is divisibleby(-1) }}"),
            "0 True");
  EXPECT_EQ(render("{{ 1 ** 9223372036854775807 }} {{ 2 ** 62 }} {{ 1e400 }} {{ 1e-400 }}"),
            "1 4611686018427387904 inf 0.0");
}

TEST(ChatTemplate, PythonValueFormatting) {
  EXPECT_EQ(render("{{ 1e16 }} {{ 1e-5 }} {{ 123456789.0 }} {{ 0.1 }} {{ 1/3 }} {{ -0.0 }} {{ 2.5e-3 }}"),
            "1e+16 1e-05 123456789.0 0.1 0.3333333333333333 -0.0 0.0025");
  EXPECT_EQ(render("{{ ['a\\'b', \"q\\\"\", '\\u3000', none, (1,)] }}"), "[\"a'b\", 'q\"', '\\u3000', None, (1,)]");
  EXPECT_EQ(
      render("{{ {'k': ['\\n']} | tojson(ensure_ascii=true) }} {{ '\\u00e9\\U0001F600' | tojson(ensure_ascii=true) }}"),
      "{\"k\": [\"\\n\"]} \"\\u00e9\\ud83d\\ude00\"");
  EXPECT_EQ(render("{{ {'a': [1, 2]} | tojson(indent=2, separators=(',', ' = ')) }}"),
            "{\n  \"a\" = [\n    1,\n    2\n  ]\n}");
}

class ChatFormatDir : public ::testing::Test {
 protected:
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_.file(name), std::ios::binary) << text;
  }
  ScratchDir dir_;
};

TEST_F(ChatFormatDir, ReadsTemplateTokensAndEosIds) {
  const auto tok = load_tokenizer(testing::tokenizer_fixtures() + "/qwen2/tokenizer.json");
  const int32_t im_end = *tok->special_token("<|im_end|>");
  write("tokenizer_config.json", ojson({{"bos_token", nullptr},
                                        {"eos_token", {{"content", "<|im_end|>"}, {"__type", "AddedToken"}}},
                                        {"pad_token", "<|endoftext|>"},
                                        {"chat_template", ojson::array({{{"name", "tool_use"}, {"template", "T"}},
                                                                        {{"name", "default"},
                                                                         {"template",
                                                                          "{{ eos_token }}{{ messages | "
                                                                          "length }}{{ bos_token }}"}}})}})
                                     .dump());
  write("generation_config.json", R"({"eos_token_id": [7, 9]})");
  ChatFormat f = load_chat_format(dir_.file(""), tok.get());
  ASSERT_TRUE(f.chat_template.has_value());
  EXPECT_EQ(f.eos_token, "<|im_end|>");
  EXPECT_EQ(f.bos_token, "");
  EXPECT_EQ(f.stop_ids, (std::vector<int32_t>{7, 9, im_end}));
  EXPECT_EQ(f.render({{"user", "a"}, {"assistant", "b"}}, true), "<|im_end|>2");
  // chat_template.jinja wins over tokenizer_config.json; config.json's eos id is the fallback.
  write("chat_template.jinja", "{{ messages[0].content }}!\n");
  write("generation_config.json", R"({"bos_token_id": 1})");
  write("config.json", R"({"eos_token_id": 3})");
  f = load_chat_format(dir_.file(""), nullptr);
  EXPECT_EQ(f.render({{"user", "hey"}}, false), "hey!");
  EXPECT_EQ(f.stop_ids, (std::vector<int32_t>{3}));
}

TEST_F(ChatFormatDir, MissingFilesMeanNoTemplateAndBadOnesFailNamingTheFile) {
  ChatFormat f = load_chat_format(dir_.file(""), nullptr);
  EXPECT_FALSE(f.chat_template.has_value());
  EXPECT_TRUE(f.stop_ids.empty());
  EXPECT_THROW(f.render({}, true), ValueError);
  write("tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "x"}]})");
  try {
    load_chat_format(dir_.file(""), nullptr);
    ADD_FAILURE() << "accepted";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("no chat template named \"default\" (it has: tool_use)"), std::string::npos)
        << e.what();
  }
  write("tokenizer_config.json", R"({"chat_template": "{% macro x() %}{% endmacro %}"})");
  try {
    load_chat_format(dir_.file(""), nullptr);
    ADD_FAILURE() << "accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
  }
  write("tokenizer_config.json", "{}");
  write("generation_config.json", R"({"eos_token_id": "x"})");
  EXPECT_THROW(load_chat_format(dir_.file(""), nullptr), IOError);
}

}  // namespace
}  // namespace lnx::data
