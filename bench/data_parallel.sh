#!/usr/bin/env bash
# Data parallelism on this machine, A/B in one sitting (BENCHMARKS.md, "Data parallelism"):
#   1. loopback all-reduce times on 2 ranks (the cost model's α and β, docs/scaling.md);
#   2. per preset, a B × T training step as 2 ranks × 1 thread (with the same step without
#      communication, and the all-reduce alone, measured in the same processes), as 1 rank ×
#      2 threads, and as 1 rank × 1 thread on half the batch with the other core idle.
# Usage: bench/data_parallel.sh [B] [T] [STEPS] [PRESET...]   (default 8 512 3, six -small presets)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/build/bench/bench_data_parallel"
B=${1:-8}; T=${2:-512}; STEPS=${3:-3}; shift $(( $# < 3 ? $# : 3 ))
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(attention-small gated_deltanet-small gla-small mamba2-small retnet-small hybrid-small)
mpirun_flags=(--bind-to core)
[ "$(id -u)" -ne 0 ] || mpirun_flags+=(--allow-run-as-root)

mpirun "${mpirun_flags[@]}" -np 2 "$bin" allreduce
for p in "${presets[@]}"; do
  mpirun "${mpirun_flags[@]}" -np 2 -x OMP_NUM_THREADS=1 env OMP_NUM_THREADS=1 "$bin" "$p" "$B" "$T" "$STEPS"
  OMP_NUM_THREADS=2 "$bin" "$p" "$B" "$T" "$STEPS"
  OMP_NUM_THREADS=1 taskset -c 0 "$bin" "$p" "$((B / 2))" "$T" "$STEPS"
done
