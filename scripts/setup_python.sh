#!/usr/bin/env bash
# The Python environment of the package's tests and examples: a virtual environment .venv
# over Debian's python3, which sees Debian's numpy, pytest, PyTorch and matplotlib (installed
# by scripts/setup.sh), with nanobind and scikit-build-core from PyPI for building the
# extension. Idempotent: an environment that has them is left as it is.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
bash "$root/scripts/setup.sh"
if [ ! -x "$venv/bin/python" ]; then
  # Debian's interpreter (not one earlier on PATH): python3-torch and friends are built for it.
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
if ! "$venv/bin/python" -c "import nanobind, scikit_build_core" 2>/dev/null; then
  "$venv/bin/pip" install -q "nanobind>=2.4,<4" "scikit-build-core>=0.10,<2"
fi
echo "setup_python: $venv ready ($("$venv/bin/python" --version))"
