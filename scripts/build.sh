#!/usr/bin/env bash
# Configures and builds LinearNexus (Release) into build/. Extra arguments go to cmake.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The Python extension is built by pip (scripts/test_python.sh), which may reuse this build
# directory and switch LNX_BUILD_PYTHON on there; the main build does not need Python.
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DLNX_BUILD_PYTHON=OFF "$@" >/dev/null
cmake --build "$root/build" -j "$(nproc)"
