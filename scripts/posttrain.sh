#!/usr/bin/env bash
# The default post-training job: install dependencies, build the command-line tool (Release),
# then train hybrid-tiny from scratch on 500 labelled 2-digit additions (SFT) and post-train it
# with GRPO and, separately, with PPO on the addition task's checker, printing the greedy
# accuracy on held-out prompts before and after each. About 2-3 minutes on 2 cores after the
# build. Runs go to runs/posttrain/ (a finished stage is not rerun; delete the folder to start
# over). Extra arguments go to both post-training stages as key=value overrides.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DLNX_BUILD_PYTHON=OFF >/dev/null
cmake --build "$root/build" -j "$(nproc)" --target linearnexus_cli
cd "$root"  # runs/ (git-ignored) goes inside the checkout
lnx="$root/build/linearnexus"
"$lnx" task addition --digits 2 --examples 500 --seed 1 --out runs/posttrain/sft.jsonl
"$lnx" train --config configs/posttrain/addition-sft.yaml
"$lnx" grpo --config configs/posttrain/addition-grpo.yaml "$@"
"$lnx" ppo --config configs/posttrain/addition-ppo.yaml "$@"
