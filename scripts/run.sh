#!/usr/bin/env bash
# The main job: install dependencies, build, and run the default job of the CLI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
"$root/build/linearnexus" "$@"
