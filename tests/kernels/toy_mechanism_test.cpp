// The toy mechanism's own option (decay) reaches every form, and its declaration checks it.
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/describe.h"
#include "kernels/mechanism.h"
#include "numeric.h"

namespace lnx::kernels {
namespace {

TEST(ToyMechanism, IsRegisteredWithItsOption) {
  const Mechanism& m = mechanism("toy_fixed_decay");
  ASSERT_EQ(m.options.fields.size(), 1u);
  EXPECT_EQ(m.options.fields[0].name, "decay");
  EXPECT_EQ(m.options.fields[0].type, "float");
  EXPECT_EQ(m.options.fields[0].default_value, "0.9");
}

TEST(ToyMechanism, DecayOptionReachesEveryForm) {
  const Mechanism& m = mechanism("toy_fixed_decay");
  ProblemSize s{2, 40, 2, 5, 3};
  Generator gen(3);
  TensorDict in = m.make_inputs(s, gen, DType::f64);
  in.insert("initial_state", randn({2, 2, 5, 3}, gen, DType::f64));
  MechanismOptions half;
  half.set("decay", 0.5);
  half.chunk_size = 16;
  const MechanismOutputs ref = run("toy_fixed_decay", Form::reference, in, half);
  const MechanismOutputs ref_default = run("toy_fixed_decay", Form::reference, in);
  EXPECT_FALSE(all_close(ref.o, ref_default.o, 1e-3));  // the option changes the result
  for (Form f : {Form::recurrent, Form::chunk}) {
    const MechanismOutputs out = run("toy_fixed_decay", f, in, half);
    EXPECT_TRUE(all_close(out.o, ref.o, 1e-10)) << form_name(f);
    EXPECT_TRUE(all_close(out.final_state, ref.final_state, 1e-10)) << form_name(f);
  }
}

TEST(ToyMechanism, OptionsAreChecked) {
  const Mechanism& m = mechanism("toy_fixed_decay");
  Generator gen(4);
  TensorDict in = m.make_inputs({1, 4, 1, 2, 2}, gen, DType::f32);
  MechanismOptions bad;
  bad.set("decay", 1.5);  // out of bounds
  EXPECT_THROW(run("toy_fixed_decay", Form::chunk, in, bad), ValueError);
  MechanismOptions wrong_type;
  wrong_type.set("decay", std::string("fast"));
  EXPECT_THROW(run("toy_fixed_decay", Form::chunk, in, wrong_type), ValueError);
  MechanismOptions unknown;
  unknown.set("window", int64_t{3});
  EXPECT_THROW(run("toy_fixed_decay", Form::recurrent, in, unknown), ValueError);
  // Built-in mechanisms check their options the same way.
  EXPECT_THROW(run("simple_gla", Form::chunk, in, unknown), ValueError);
}

// The generated docs describe it from its declaration: inputs with shapes, its option.
TEST(ToyMechanism, DocsGeneratorDescribesIt) {
  const std::string md = mechanisms_markdown();
  EXPECT_NE(md.find("## toy_fixed_decay"), std::string::npos);
  EXPECT_NE(md.find("| `decay` | float | `0.9` | 1e-06 … 1 |"), std::string::npos) << md;
  EXPECT_NE(mechanisms_table_markdown().find("`toy_fixed_decay`"), std::string::npos);
  bool found = false;
  for (const auto& m : mechanisms_json())
    if (m["name"] == "toy_fixed_decay") {
      found = true;
      EXPECT_EQ(m["inputs"][0]["shape"], "[B,T,H,K]");
      EXPECT_EQ(m["options"][0]["name"], "decay");
      EXPECT_EQ(m["forms"].size(), 3u);
    }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace lnx::kernels
