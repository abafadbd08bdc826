// Registers the test-only toy mechanism (tests/kernels/toy_mechanism/) before the tests are
// enumerated: the one line a user adds for a mechanism of their own. The registry-driven tests
// (mechanism_test.cpp) then run it like every built-in mechanism.
#include "kernels/toy_mechanism/fixed_decay.h"

namespace {
const bool registered = (lnx::kernels::register_mechanism(lnx::toy::fixed_decay_mechanism()), true);
}  // namespace
