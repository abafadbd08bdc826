#!/usr/bin/env bash
# Builds and installs the Python package into .venv, reusing build/'s objects (so the library
# is compiled once), then runs the Python tests (python/tests) with pytest. Extra arguments go
# to pytest. scripts/test.sh runs this after the C++ tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
bash "$root/scripts/setup_python.sh"
# The PyTorch bridge's tests must run, not skip: torch comes from Debian's python3-torch.
"$venv/bin/python" -c "import torch" || {
  echo "test_python: PyTorch is missing from $venv (scripts/setup.sh installs python3-torch)" >&2
  exit 1
}
# build/ keeps its generator (pip would otherwise pick Ninja where it is installed, which CMake
# refuses in a Makefile build) and its tests; pip builds only the extension target there.
# (--config-settings spelled out: Debian's pip 23.0 has no -C.)
generator="$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$root/build/CMakeCache.txt")"
CMAKE_GENERATOR="${generator:-Unix Makefiles}" "$venv/bin/pip" install -q --no-build-isolation "$root" \
  --config-settings=build-dir="$root/build" --config-settings=cmake.define.LNX_BUILD_TESTS=ON \
  --config-settings=cmake.define.LNX_BUILD_BENCHMARKS=ON
cd "$root"
"$venv/bin/python" -m pytest -q python/tests --linearnexus-cli "$root/build/linearnexus" "$@"
