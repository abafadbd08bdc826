#!/usr/bin/env bash
# The main job: install dependencies, build, and run the default job of the CLI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
cd "$root"  # the run directory (runs/, git-ignored) goes inside the checkout
"$root/build/linearnexus" "$@"
