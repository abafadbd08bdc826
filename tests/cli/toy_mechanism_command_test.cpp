// The test-only toy mechanism (tests/kernels/toy_mechanism/, registered by one line in
// tests/kernels/toy_registration.cpp, compiled into this binary too) through the CLI's code in
// process: `op` runs it with its own option given as a generated flag, and `list` shows it in
// every format — the same path a user's own mechanism takes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/commands.h"
#include "io/safetensors.h"
#include "kernels/mechanism.h"
#include "numeric.h"

namespace lnx {
namespace {

// Parses args as the linearnexus binary does (list and op only) and runs the chosen command,
// returning what it printed on stdout.
std::string run_in_process(std::vector<std::string> args) {
  CLI::App app;
  cli::Action action;
  cli::add_list_command(app, action);
  cli::add_op_command(app, action);
  std::vector<const char*> argv{"linearnexus"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  ::testing::internal::CaptureStdout();
  const int code = action();
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0);
  return out;
}

TEST(ToyMechanismCommands, ListShowsIt) {
  EXPECT_NE(run_in_process({"list", "mechanisms"}).find("toy_fixed_decay"), std::string::npos);
  EXPECT_NE(run_in_process({"list", "mechanisms", "--format", "markdown"}).find("## toy_fixed_decay"),
            std::string::npos);
  EXPECT_NE(run_in_process({"list", "mechanisms", "--format", "json"}).find("\"toy_fixed_decay\""), std::string::npos);
}

TEST(ToyMechanismCommands, OpRunsItWithItsOption) {
  const kernels::Mechanism& m = kernels::mechanism("toy_fixed_decay");
  Generator gen(5);
  TensorDict in = m.make_inputs({1, 20, 2, 4, 3}, gen, DType::f32);
  in.insert("do", randn({1, 20, 2, 3}, gen, DType::f32));
  const std::string dir = ::testing::TempDir();
  save_safetensors(dir + "toy_in.safetensors", in);
  run_in_process({"op", "toy_fixed_decay", "--form", "chunk", "--chunk-size", "8", "--decay", "0.5", "-i",
                  dir + "toy_in.safetensors", "-o", dir + "toy_out.safetensors"});
  const SafetensorsFile out = load_safetensors(dir + "toy_out.safetensors");
  TensorDict inputs;
  for (const char* name : {"q", "k", "v"}) inputs.insert(name, in.at(name));
  kernels::MechanismOptions half;
  half.set("decay", 0.5);
  const kernels::MechanismOutputs ref = kernels::run("toy_fixed_decay", kernels::Form::reference, inputs, half);
  EXPECT_TRUE(all_close(out.tensors.at("o"), ref.o, 1e-5));
  EXPECT_TRUE(out.tensors.contains("dq"));
  // The option is checked against the mechanism's declaration.
  EXPECT_THROW(run_in_process({"op", "simple_gla", "--decay", "0.5", "-i", dir + "toy_in.safetensors", "-o",
                               dir + "toy_out2.safetensors"}),
               ValueError);
}

}  // namespace
}  // namespace lnx
