// Layering probe (tests/CMakeLists.txt): compiled like a source of the kernels layer, with
// kernels' include view. modules sits above kernels, so this header must not be found and
// the probe must fail to build.
#include "modules/mixer.h"
