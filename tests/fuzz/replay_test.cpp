// The fuzz targets on their seed corpora (fuzz/corpus/<target>/) and on the inputs that once
// broke them (fuzz/regressions/<target>/): each input is refused with an lnx::Error or loads,
// never anything else. Every seed must be accepted (a stale seed would leave the fuzzer exploring
// only the rejection paths).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz_targets.h"

namespace lnx::fuzz {

void PrintTo(const FuzzTargetInfo& t, std::ostream* os) { *os << t.name; }

namespace {

namespace fs = std::filesystem;

const std::string kFuzzDir = std::string(LNX_SOURCE_DIR) + "/fuzz";

std::vector<std::string> inputs(const std::string& folder) {
  std::vector<std::string> files;
  if (fs::is_directory(folder))
    for (const auto& e : fs::directory_iterator(folder))
      if (e.is_regular_file()) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FuzzReplay : public ::testing::TestWithParam<FuzzTargetInfo> {};

TEST_P(FuzzReplay, EveryCorpusAndRegressionInputIsLoadedOrRefusedCleanly) {
  const FuzzTargetInfo& target = GetParam();
  const std::vector<std::string> seeds = inputs(kFuzzDir + "/corpus/" + target.name);
  EXPECT_GE(seeds.size(), 2u) << "fuzz/corpus/" << target.name << " needs seeds";
  auto run = [&](const std::string& path) {
    const std::string bytes = read(path);
    bool accepted = false;
    EXPECT_NO_THROW(accepted = target.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())) << path;
    return accepted;
  };
  for (const std::string& path : seeds) EXPECT_TRUE(run(path)) << path << " is refused";
  for (const std::string& path : inputs(kFuzzDir + "/regressions/" + target.name)) run(path);
}

std::string target_name(const ::testing::TestParamInfo<FuzzTargetInfo>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(fuzz_targets()), target_name);

}  // namespace
}  // namespace lnx::fuzz
