// Config base (core/config.h): YAML round trips of a struct with every field type and of
// mixers' typed configs (modules::GlaConfig, LinearAttentionConfig, RetNetConfig), the
// accepted scalar forms, every error with its message content (key, valid keys, expected
// type, given text, line and column), and allowed_keys.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <type_traits>

#include "core/config.h"
#include "modules/linear_attn/gla.h"
#include "modules/linear_attn/linear_attention.h"
#include "modules/linear_attn/retnet.h"
#include "numeric.h"

namespace lnx::core {
namespace {

struct TestConfig {
  int64_t count = 3;
  double rate = 0.1;
  bool flag = false;
  std::string label = "plain";
  std::vector<std::string> names = {"a"};
  std::vector<int64_t> sizes = {1, 2};

  template <class V> void visit(V&& v) {
    v("count", count, "an integer");
    v("rate", rate, "a double");
    v("flag", flag, "a bool");
    v("label", label, "a string");
    v("names", names, "strings");
    v("sizes", sizes, "integers");
  }
  bool operator==(const TestConfig&) const = default;
};

TestConfig read_text(const std::string& text, const std::vector<std::string>* allowed = nullptr) {
  TestConfig c;
  read_config(parse_yaml(text, "test.yaml"), c, "test.yaml: section", allowed);
  return c;
}

std::string error_for(const std::string& text, const std::vector<std::string>* allowed = nullptr) {
  return error_of<ValueError>([&] { read_text(text, allowed); });
}

template <class C> C round_trip(const C& c) {
  const std::string text = to_yaml_string(write_config(c));
  C back{};
  read_config(parse_yaml(text, "round trip"), back, "round trip");
  return back;
}

TEST(Config, RoundTripEveryFieldType) {
  TestConfig c;
  c.count = -123456789012345;
  c.flag = true;
  c.names = {"x y", "true", "123", "null", "", "a: b", "- dash", "#hash", "ünï"};
  c.sizes = {};
  for (const char* label : {"hello: world", "true", "~", "null", "", "  padded ", "multi\nline", "'q\""}) {
    c.label = label;
    for (double rate : {0.1 + 0.2, 1.0 / 3, 1e-300, 5e-324, 1.7976931348623157e308, -2.5, 3.0, 0.0, -0.0, 1e22,
                        double(INFINITY), -double(INFINITY)}) {
      c.rate = rate;
      const TestConfig back = round_trip(c);
      EXPECT_EQ(back, c) << to_yaml_string(write_config(c));
      EXPECT_EQ(std::signbit(back.rate), std::signbit(rate));
    }
  }
  c.rate = NAN;
  EXPECT_TRUE(std::isnan(round_trip(c).rate));
  // Strings that read as other types carry the string tag (for other YAML readers).
  c.label = "true";
  const YAML::Node written = parse_yaml(to_yaml_string(write_config(c)), "w");
  EXPECT_EQ(written["label"].Tag(), "tag:yaml.org,2002:str");
  EXPECT_EQ(written["names"][2].Tag(), "tag:yaml.org,2002:str");  // "123"
  EXPECT_NE(written["names"][0].Tag(), "tag:yaml.org,2002:str");  // "x y"
  // Written form: doubles as their shortest text (integral ones with ".0"), lists in flow style.
  TestConfig d;
  d.rate = 3;
  const std::string text = to_yaml_string(write_config(d));
  EXPECT_NE(text.find("rate: 3.0"), std::string::npos) << text;
  EXPECT_NE(text.find("sizes: [1, 2]"), std::string::npos) << text;
  d.rate = 0.1;
  EXPECT_NE(to_yaml_string(write_config(d)).find("rate: 0.1\n"), std::string::npos);
}

// Every field of a config as text (doubles in shortest round-trip form, so equal text means
// equal values).
template <class C> std::vector<std::string> field_texts(C c) {
  std::vector<std::string> out;
  c.visit([&](const char* name, const auto& field, const char*, const auto&...) {
    out.push_back(fmt::format("{}={}", name, field));
  });
  return out;
}

TEST(Config, RoundTripMixerConfig) {
  modules::GlaConfig c;
  c.num_heads = 7;
  c.expand_k = 0.75;
  c.expand_v = 1.0 / 3;
  c.use_short_conv = false;
  c.gate_logit_normalizer = 0.1;
  c.chunk_size = 32;
  EXPECT_EQ(field_texts(round_trip(c)), field_texts(c));
  EXPECT_NE(field_texts(round_trip(c)), field_texts(modules::GlaConfig{}));
  modules::LinearAttentionConfig la;  // a string field
  la.feature_map = "elu_plus_one";
  EXPECT_EQ(field_texts(round_trip(la)), field_texts(la));
  EXPECT_NE(field_texts(round_trip(la)), field_texts(modules::LinearAttentionConfig{}));
  modules::RetNetConfig rn;
  rn.rope_theta = 500000.0;
  EXPECT_EQ(field_texts(round_trip(rn)), field_texts(rn));
  // Only the listed keys are written; reading them over defaults changes only those.
  const std::vector<std::string> keys{"num_heads", "expand_v", "not_a_field"};
  const YAML::Node node = write_config(c, &keys);
  ASSERT_TRUE(node.IsMap());
  EXPECT_EQ(node.size(), 2u);
  EXPECT_TRUE(node["num_heads"] && node["expand_v"]);
  modules::GlaConfig back;
  read_config(parse_yaml(to_yaml_string(node), "mixer"), back, "mixer", &keys);
  EXPECT_EQ(back.num_heads, 7);
  EXPECT_EQ(back.expand_v, 1.0 / 3);
  EXPECT_EQ(back.expand_k, modules::GlaConfig{}.expand_k);
}

TEST(Config, AcceptedScalarForms) {
  EXPECT_EQ(read_text("count: +5").count, 5);
  EXPECT_EQ(read_text("count: -7").count, -7);
  EXPECT_EQ(read_text("count: '12'").count, 12);  // quoting does not matter
  EXPECT_EQ(read_text("count: 9223372036854775807").count, INT64_MAX);
  EXPECT_EQ(read_text("rate: 3").rate, 3.0);
  EXPECT_EQ(read_text("rate: .5").rate, 0.5);
  EXPECT_EQ(read_text("rate: -1e-3").rate, -1e-3);
  EXPECT_EQ(read_text("rate: +1.5").rate, 1.5);
  EXPECT_EQ(read_text("rate: -.inf").rate, -INFINITY);
  EXPECT_TRUE(std::isnan(read_text("rate: .NaN").rate));
  for (const char* t : {"true", "True", "TRUE", "yes", "on", "y"})
    EXPECT_TRUE(read_text(std::string("flag: ") + t).flag) << t;
  for (const char* t : {"false", "no", "Off", "n"}) {
    TestConfig c;
    c.flag = true;
    read_config(parse_yaml(std::string("flag: ") + t, "t"), c, "t");
    EXPECT_FALSE(c.flag) << t;
  }
  EXPECT_EQ(read_text("label: 123").label, "123");
  EXPECT_EQ(read_text("names: [b, c]\nsizes:\n  - 4\n  - 5\n").names, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(read_text("sizes:\n  - 4\n  - 5\n").sizes, (std::vector<int64_t>{4, 5}));
  EXPECT_TRUE(read_text("sizes: []").sizes.empty());
  // Absent keys keep their values; an empty document or section is no keys.
  EXPECT_EQ(read_text("count: 4"), (TestConfig{.count = 4}));
  EXPECT_EQ(read_text(""), TestConfig{});
  TestConfig c;
  read_config(parse_yaml("a:\n", "t")["a"], c, "t");
  read_config(parse_yaml("a: 1\n", "t")["missing"], c, "t");
  EXPECT_EQ(c, TestConfig{});
}

TEST(Config, UnknownKeyNamesKeyPositionAndValidKeys) {
  const std::string e = error_for("count: 2\n\n  # comment\nlabel: x\nnm_heads: 3\n");
  EXPECT_NE(e.find("[config] test.yaml: section line 5, column 1: unknown key 'nm_heads'; "
                   "valid keys: count, rate, flag, label, names, sizes"),
            std::string::npos)
      << e;
  // Flow maps: the column is the key's.
  EXPECT_NE(error_for("{count: 2, cuont: 3}").find("line 1, column 12: unknown key 'cuont'"), std::string::npos);
  // A mixer's config: the list is its fields in order.
  modules::GlaConfig m;
  const std::string me = error_of<ValueError>(
      [&] { read_config(parse_yaml("num_heads: 2\nnm_heads: 4\n", "model.yaml"), m, "model.yaml: layers.gla"); });
  EXPECT_NE(me.find("model.yaml: layers.gla line 2, column 1: unknown key 'nm_heads'; valid keys: num_heads, "
                    "head_dim, expand_k"),
            std::string::npos)
      << me;
  EXPECT_NE(me.find("gate_logit_normalizer, chunk_size"), std::string::npos);
}

TEST(Config, AllowedKeysRestrictAndAdmit) {
  const std::vector<std::string> allowed{"count", "flag", "extra"};
  const std::string e = error_for("count: 1\nrate: 0.5\n", &allowed);
  EXPECT_NE(e.find("line 2, column 1: unknown key 'rate'; valid keys: count, flag, extra"), std::string::npos) << e;
  // A valid key that is not a field is left to the caller; the fields are still read.
  const TestConfig c = read_text("count: 9\nextra: {anything: [1, 2]}\nflag: yes\n", &allowed);
  EXPECT_EQ(c.count, 9);
  EXPECT_TRUE(c.flag);
}

TEST(Config, WrongTypesNameKeyTypeTextAndPosition) {
  struct Bad {
    std::string text, want;
  };
  const std::vector<Bad> cases{
      {"count: abc", "line 1, column 8: 'count' must be an integer, got 'abc'"},
      {"count: 1.5", "'count' must be an integer, got '1.5'"},
      {"count: 1e3", "'count' must be an integer, got '1e3'"},
      {"count: 0x10", "got '0x10'"},
      {"count: 99999999999999999999", "got '99999999999999999999'"},
      {"count: +-1", "got '+-1'"},
      {"count: ''", "'count' must be an integer, got ''"},
      {"count:", "'count' must be an integer, got an empty value"},
      {"count: {a: 1}", "'count' must be an integer, got a map"},
      {"count: [1]", "'count' must be an integer, got a list"},
      {"rate: fast", "'rate' must be a number, got 'fast'"},
      {"rate: inf", "got 'inf'"},
      {"rate: nan", "got 'nan'"},
      {"rate: 1e999", "got '1e999'"},
      {"rate: 1.5.2", "got '1.5.2'"},
      {"flag: 1", "'flag' must be a boolean (true/false, yes/no, on/off), got '1'"},
      {"flag: maybe", "got 'maybe'"},
      {"label: [a]", "'label' must be a string, got a list"},
      {"label:", "'label' must be a string, got an empty value"},
      {"names: a", "'names' must be a list of strings, got 'a'"},
      {"names: {a: b}", "'names' must be a list of strings, got a map"},
      {"names: [a, [b]]", "line 1, column 12: 'names[1]' must be a string, got a list"},
      {"count: 1\nsizes: [1, x]", "line 2, column 12: 'sizes[1]' must be an integer, got 'x'"},
      {"count: 1\ncount: 2", "line 2, column 1: key 'count' is given twice"},
      {"[a]: 1", "keys must be names, got a list"},
      {"- a\n- b", "test.yaml: section line 1, column 1: expected a map of key: value, got a list"},
      {"hello", "expected a map of key: value, got 'hello'"},
  };
  for (const Bad& b : cases) {
    const std::string e = error_for(b.text);
    EXPECT_NE(e.find(b.want), std::string::npos) << "text: " << b.text << "\nmessage: " << e;
    EXPECT_EQ(e.rfind("[config] test.yaml: section", 0), 0u) << e;
  }
}

TEST(Config, ParseErrorsAndFiles) {
  const std::string e = error_of<ValueError>([] { parse_yaml("a: 1\nb: [1, 2\n", "bad.yaml"); });
  EXPECT_EQ(e.rfind("[config] bad.yaml line ", 0), 0u) << e;
  EXPECT_NE(error_of<ValueError>([] { parse_yaml("a: 1\n  b: 2\n", "bad.yaml"); }).find("bad.yaml line 2"),
            std::string::npos);
  // Hostile nesting is an error, not a stack overflow.
  EXPECT_NE(error_of<ValueError>([] { parse_yaml(std::string(100000, '['), "deep.yaml"); }).find("[config] deep.yaml"),
            std::string::npos);

  const std::string missing = ::testing::TempDir() + "/lnx_no_such_config.yaml";
  const std::string io = error_of<IOError>([&] { load_yaml_file(missing); });
  EXPECT_NE(io.find("cannot open '" + missing + "'"), std::string::npos) << io;

  const std::string path = ::testing::TempDir() + "/lnx_config_test.yaml";
  TestConfig c;
  c.count = 11;
  c.names = {"p", "q"};
  std::ofstream(path) << to_yaml_string(write_config(c)) << "\n";
  TestConfig back;
  read_config(load_yaml_file(path), back, path);
  EXPECT_EQ(back, c);
  std::ofstream(path) << "count: 1\nbogus: 2\n";
  TestConfig other;
  const std::string fe = error_of<ValueError>([&] { read_config(load_yaml_file(path), other, path); });
  EXPECT_NE(fe.find(path + " line 2, column 1: unknown key 'bogus'"), std::string::npos) << fe;
  std::ofstream(path) << "count: [1,\n";
  EXPECT_NE(error_of<ValueError>([&] { load_yaml_file(path); }).find(path + " line"), std::string::npos);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace lnx::core
