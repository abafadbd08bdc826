// `linearnexus list` sections and `linearnexus info --preset/--config` end to end.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_test_util.h"
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

}  // namespace
}  // namespace lnx
