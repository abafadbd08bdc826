#!/usr/bin/env bash
# Installs the Debian packages LinearNexus builds against. Idempotent: when every package is
# already installed it does nothing and touches no network.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # CBLAS; the OpenMP build shares our thread pool (no oversubscription)
  nlohmann-json3-dev       # safetensors headers, metrics
  libyaml-cpp-dev          # configs
  libcli11-dev             # command line
  libfmt-dev
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
  clang-format             # the formatting check (tests/format): the tree follows .clang-format
  clang libclang-rt-dev    # libFuzzer with ASan and UBSan (scripts/fuzz.sh, run by CI)
  openmpi-bin libopenmpi-dev  # data-parallel training (mpirun), tested under mpirun -np 2 and 3
  # The Python package (scripts/setup_python.sh makes a virtual environment over these):
  # headers and venv to build it, numpy, pytest, PyTorch (the autograd bridge's tests) and
  # matplotlib (the example's plot)
  python3-dev python3-venv python3-numpy python3-pytest python3-torch python3-matplotlib
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
