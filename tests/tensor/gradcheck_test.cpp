// The shared parameterised gradient test; the tables live in gradcheck_<family>_test.cpp.
#include "gradcheck.h"

namespace lnx {

TEST_P(GradCheck, MatchesFiniteDifferences) { EXPECT_TRUE(check_gradients(GetParam())); }

}  // namespace lnx
