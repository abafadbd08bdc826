#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# into build-fuzz/ and runs each for SECONDS (default 60) from its seed corpus fuzz/corpus/<target>/
# plus the inputs of fuzz/regressions/<target>/. Fails on the first finding (a crash, a sanitizer
# report, an exception other than lnx::Error, a timeout or running out of memory), leaving the
# input in build-fuzz/findings/. Once fixed, copy it to fuzz/regressions/<target>/: the tests
# replay it in every build.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(safetensors tokenizer_json train_config state_file checkpoint chat_template); fi
build="$root/build-fuzz"

# -O1 -g: sanitizer reports with usable stacks, and a build twice as fast as -O3.
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DLNX_FUZZ=ON -DLNX_MPI=OFF -DLNX_BUILD_TESTS=OFF -DLNX_BUILD_BENCHMARKS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

mkdir -p "$build/findings"
export OMP_NUM_THREADS=1  # one input at a time; threads would only add noise to the coverage
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for t in "${targets[@]}"; do
  work="$build/corpus/$t"  # grows with what the fuzzer finds; the repository's seeds stay as they are
  mkdir -p "$work"
  echo "fuzz: $t for ${seconds}s"
  dirs=("$work" "$root/fuzz/corpus/$t")
  if [ -d "$root/fuzz/regressions/$t" ]; then dirs+=("$root/fuzz/regressions/$t"); fi
  if ! "$build/fuzz/fuzz_$t" "${dirs[@]}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -artifact_prefix="$build/findings/$t-" -print_final_stats=1 >"$build/fuzz_$t.log" 2>&1; then
    tail -n 60 "$build/fuzz_$t.log"
    echo "fuzz: $t FOUND A PROBLEM; the input is in $build/findings/ (full log: $build/fuzz_$t.log)" >&2
    exit 1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz_$t.log" | tr '\n' ' '
  echo
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no findings"
