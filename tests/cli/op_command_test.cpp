// `linearnexus op` end to end: the binary reads inputs from a safetensors file, and its
// outputs and gradients equal the library's; two runs on the same file agree bit for bit;
// malformed files and bad requests fail with one clear line and a non-zero exit.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli_test_util.h"
#include "io/safetensors.h"
#include "kernels/builtin.h"
#include "kernels/mechanism.h"
#include "numeric.h"

namespace lnx {
namespace {

namespace fs = std::filesystem;

class OpCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / fmt::format("lnx_op_{}", ::getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(OpCommand, OutputsAndGradientsEqualTheLibraryAndRunsAreIdentical) {
  const kernels::Mechanism& m = kernels::mechanism("simple_gla");
  Generator gen(5);
  kernels::ProblemSize s{1, 70, 2, 8, 6};
  TensorDict in = m.make_inputs(s, gen, DType::f32);
  in.insert("initial_state", randn({2, s.H, s.K, s.V}, gen));
  TensorDict file = in;
  file.insert("cu_seqlens", from_vector<int64_t>({0, 30, 70}, {3}));
  Tensor d_o = randn({1, s.T, s.H, s.V}, gen), d_final = randn({2, s.H, s.K, s.V}, gen);
  file.insert("do", d_o);
  file.insert("dfinal_state", d_final);
  save_safetensors(path("in.safetensors"), file);

  for (const char* out : {"out1.safetensors", "out2.safetensors"}) {
    CommandResult r = run_cli(fmt::format("op simple_gla --form chunk -i {} -o {}", path("in.safetensors"), path(out)));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  TensorDict a = load_safetensors(path("out1.safetensors")).tensors;
  TensorDict b = load_safetensors(path("out2.safetensors")).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_EQ(t.to_vector<float>(), b.at(name).to_vector<float>()) << name;

  // The same computation in-process.
  TensorDict leaves;
  for (const auto& [name, t] : in) leaves.insert(name, t.clone().set_requires_grad());
  kernels::MechanismOptions opt;
  opt.cu_seqlens = from_vector<int64_t>({0, 30, 70}, {3});
  kernels::MechanismOutputs out = kernels::run("simple_gla", kernels::Form::chunk, leaves, opt);
  add(sum(mul(out.o, d_o)), sum(mul(out.final_state, d_final))).backward();
  EXPECT_EQ(a.at("o").to_vector<float>(), out.o.to_vector<float>());
  EXPECT_EQ(a.at("final_state").to_vector<float>(), out.final_state.to_vector<float>());
  for (const auto& [name, t] : leaves) EXPECT_TRUE(all_close(a.at("d" + name), t.grad(), 1e-6)) << name;
  EXPECT_FALSE(a.contains("dcu_seqlens"));
}

TEST_F(OpCommand, MalformedFilesAndBadRequestsFailWithOneClearLine) {
  {
    std::ofstream f(path("bad.safetensors"), std::ios::binary);
    f << "not a safetensors file at all";
  }
  CommandResult r = run_cli(fmt::format("op simple_gla -i {} -o {}", path("bad.safetensors"), path("o.st")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("o.st")));

  r = run_cli(fmt::format("op no_such_mechanism -i {} -o {}", path("bad.safetensors"), path("o.st")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("simple_gla"), std::string::npos) << r.output;  // lists the names

  save_safetensors(path("partial.safetensors"), {{"q", zeros({1, 4, 1, 2})}});
  r = run_cli(fmt::format("op simple_gla -i {} -o {}", path("partial.safetensors"), path("o.st")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("missing required input"), std::string::npos) << r.output;

  r = run_cli(fmt::format("op simple_gla --form fused -i {} -o {}", path("partial.safetensors"), path("o.st")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("unknown form"), std::string::npos) << r.output;

  // Issue 14 (CLI sweep): an --option without name=value threw from the option parser, outside
  // the error handler (abort, rc 134).
  for (const char* option : {"noeq", "=", "=1"}) {
    r = run_cli(fmt::format("op linear_attn -i /nonexistent -o {} --option '{}'", path("o.st"), option));
    EXPECT_EQ(r.exit_code, 1) << option << ": " << r.output;
    EXPECT_NE(r.output.find("error: [op] --option"), std::string::npos) << r.output;
  }
}

TEST_F(OpCommand, ListShowsEveryMechanism) {
  CommandResult r = run_cli("list");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The built-in ones (this test binary also registers a toy that the binary does not have).
  for (const auto& m : kernels::builtin_mechanisms()) EXPECT_NE(r.output.find(m.name), std::string::npos) << m.name;
  EXPECT_NE(r.output.find("initial_state"), std::string::npos);
}

}  // namespace
}  // namespace lnx
