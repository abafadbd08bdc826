// `linearnexus list` sections and `linearnexus info --preset/--config` end to end.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_test_util.h"
#include "core/fields.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "modules/mixer.h"

namespace lnx {
namespace {

TEST(ListCommand, ShowsMechanismsMixersAndPresets) {
  CommandResult r = run_cli("list");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"# mechanisms", "# mixers", "# presets", "gated_delta_rule", "hybrid-tiny"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
  r = run_cli("list mixers");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& m : modules::mixer_names()) EXPECT_NE(r.output.find(m + "\n"), std::string::npos) << m;
  EXPECT_EQ(r.output.find("# presets"), std::string::npos);
  r = run_cli("list presets");
  for (const auto& p : models::presets()) EXPECT_NE(r.output.find(p.name), std::string::npos) << p.name;
  r = run_cli("list widgets");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("error: [list] unknown section 'widgets'"), std::string::npos) << r.output;
}

TEST(InfoCommand, PresetPrintsLayerTableParametersAndFlops) {
  CommandResult r = run_cli("info --preset hybrid3-tiny --context 1024");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const models::LMModel m(models::preset_config("hybrid3-tiny"));
  EXPECT_NE(r.output.find("parameters: " + std::to_string(m.num_parameters())), std::string::npos) << r.output;
  for (const char* s : {"gated_deltanet+mlp", "mamba2", "attention+mlp", "FLOPs/token at context 1024"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  r = run_cli("info --preset no-such-model");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("unknown preset 'no-such-model'"), std::string::npos) << r.output;
}

TEST(InfoCommand, ConfigFileErrorsNameTheKeyAndLine) {
  const std::string path = ::testing::TempDir() + "lnx_info_bad.yaml";
  std::ofstream(path) << "d_model: 32\nblock_pattern: [attention]\nnum_hedas: 4\n";
  CommandResult r = run_cli("info --config " + path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("num_hedas"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("line 3"), std::string::npos) << r.output;
  std::ofstream(path) << "d_model: 32\nblock_pattern: [attention]\n";
  r = run_cli("info --config " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::filesystem::remove(path);
}

// `list mixers` prints each mixer's options from its declaration: name, type, default, help.
TEST(ListCommand, MixersShowTheirOptionsFromTheirDeclarations) {
  const CommandResult r = run_cli("list mixers");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& name : modules::mixer_names()) {
    const modules::MixerSpec& spec = modules::mixer_spec(name);
    // The section starts with a line holding only the name.
    size_t at = std::string::npos;
    if (r.output.rfind(name + "\n", 0) == 0)
      at = 0;
    else if (const size_t p = r.output.find("\n" + name + "\n"); p != std::string::npos)
      at = p + 1;
    ASSERT_NE(at, std::string::npos) << name;
    const size_t end = r.output.find("\n\n", at);
    const std::string section = r.output.substr(at, end - at);
    EXPECT_NE(section.find(spec.block_mlp ? "(mlp: true)" : "(mlp: false)"), std::string::npos) << section;
    for (const core::FieldInfo& f : spec.defaults.fields()) {
      const size_t line = section.find("    " + f.name + " ");
      ASSERT_NE(line, std::string::npos) << name << " " << f.name << "\n" << section;
      const std::string text = section.substr(line, section.find('\n', line) - line);
      EXPECT_NE(text.find(f.type), std::string::npos) << text;
      EXPECT_NE(text.find(" " + f.default_value + " "), std::string::npos) << text;
      EXPECT_NE(text.find(f.help), std::string::npos) << text;
    }
  }
}

// `info` on a config with named layers: each block's layer and mixer, each layer's options.
TEST(InfoCommand, NamedLayersShowTheirMixersAndOptions) {
  const std::string path = ::testing::TempDir() + "lnx_info_layers.yaml";
  std::ofstream(path) << "name: local-global\nd_model: 64\nn_layer: 4\n"
                         "block_pattern: [attn_local, attn_local, attn_local, attn_global]\n"
                         "layers:\n  attn_local: {mixer: attention, num_heads: 4, window: 512}\n"
                         "  attn_global: {mixer: attention, num_heads: 4, mlp: false}\n";
  const CommandResult r = run_cli("info --config " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s :
       {"attn_local: attention+mlp", "attn_global: attention ", "attn_local: mixer=attention mlp=true num_heads=4",
        "window=512", "attn_global: mixer=attention mlp=false"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  const models::LMModel m(models::load_model_config(path));
  EXPECT_NE(r.output.find("parameters: " + std::to_string(m.num_parameters())), std::string::npos) << r.output;
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace lnx
