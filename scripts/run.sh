#!/usr/bin/env bash
# The main job: install dependencies, build the command-line tool (Release), and run its
# default job (train the default model on the built-in corpus, then generate from it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DLNX_BUILD_PYTHON=OFF >/dev/null
cmake --build "$root/build" -j "$(nproc)" --target linearnexus_cli
cd "$root"  # the run directory (runs/, git-ignored) goes inside the checkout
"$root/build/linearnexus" "$@"
