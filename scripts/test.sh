#!/usr/bin/env bash
# Install dependencies, build (Release), and run every test: the C++ tests through CTest, then
# the Python package's tests through pytest (scripts/test_python.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
cd "$root/build"
# One test process at a time: each already runs on every core (OpenMP and BLAS), and two at
# once oversubscribe the cores, where OpenMP's spinning barriers make the whole run about 15×
# slower (4 min instead of 17 s on 2 cores).
ctest --output-on-failure "$@"
bash "$root/scripts/test_python.sh"
