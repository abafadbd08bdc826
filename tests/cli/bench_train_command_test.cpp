// `linearnexus bench train`: one JSON object with the step time and where it went, for f32 and
// bf16 matrix products; bad sizes and precisions are errors naming the setting.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_test_util.h"

namespace lnx {
namespace {

nlohmann::json bench_json(const std::string& args) {
  const CommandResult r = run_cli("bench train --json --no-sgemm --steps 2 --warmup 1 " + args, false);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output.substr(r.output.find('{')));
}

TEST(BenchTrainCommand, ReportsTheStepAndWhereItsTimeWent) {
  for (const char* precision : {"f32", "bf16"}) {
    const nlohmann::json j = bench_json(std::string("--preset hybrid-tiny train.batch_size=2 train.seq_len=40 ") +
                                        "train.precision=" + precision);
    EXPECT_EQ(j.at("precision"), precision);
    EXPECT_EQ(j.at("batch"), 2);
    EXPECT_EQ(j.at("seq_len"), 40);
    EXPECT_GT(j.at("median_ms").get<double>(), 0.0);
    EXPECT_TRUE(std::isfinite(j.at("last_loss").get<double>()));
    double total = 0;
    for (const char* part : {"gemm", "kernels", "elementwise", "autodiff", "allocation", "optimizer"}) {
      const double share = j.at("shares").at(part).get<double>();
      EXPECT_GE(share, 0.0) << part;
      total += share;
    }
    // The shares split the steps' wall time (elementwise takes what no category claimed), and
    // the profiled categories do not overlap: together at most the wall time.
    EXPECT_NEAR(total, 1.0, 1e-9) << j.dump();
    EXPECT_GT(j.at("profiled_share").get<double>(), 0.3) << j.dump();
    EXPECT_LE(j.at("profiled_share").get<double>(), 1.0) << j.dump();
    EXPECT_GT(j.at("shares").at("gemm").get<double>(), 0.0);
    EXPECT_GT(j.at("shares").at("optimizer").get<double>(), 0.0);
    EXPECT_GT(j.at("shares").at("autodiff").get<double>(), 0.0);
  }
}

TEST(BenchTrainCommand, BadSettingsAreErrors) {
  CommandResult r = run_cli("bench train --preset attention-tiny --steps 0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--steps must be"), std::string::npos) << r.output;
  r = run_cli("bench train --preset attention-tiny --steps 1 train.precision=fp8");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("unknown precision 'fp8'"), std::string::npos) << r.output;
  for (const char* bad : {"train.batch_size=0", "train.seq_len=0", "train.clip=-1"}) {
    r = run_cli(std::string("bench train --preset attention-tiny --steps 1 ") + bad);
    EXPECT_EQ(r.exit_code, 1) << bad;
    EXPECT_NE(r.output.find("error: [bench train] train."), std::string::npos) << bad << ": " << r.output;
  }
  r = run_cli("train --preset attention-tiny --steps 1 train.precision=f16 --out /tmp/lnx_bad_precision");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("train.precision must be f32 or bf16"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace lnx
