#!/usr/bin/env bash
# Writes the documents generated from the registries: docs/mechanisms.md, docs/mixers.md and
# the README's tables (the blocks between "<!-- generated: linearnexus list … -->" and
# "<!-- end generated -->", each replaced by that command's output). With --check, writes
# nothing and exits 1 naming every file that differs (CTest docs.generated runs this).
#   bash scripts/gen_docs.sh [--check] [path/to/linearnexus]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
bin="${1:-$root/build/linearnexus}"
[ -x "$bin" ] || { echo "gen_docs: $bin is not built (bash scripts/build.sh)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$bin" list mechanisms --format markdown > "$tmp/mechanisms.md"
"$bin" list mixers --format markdown > "$tmp/mixers.md"

# The README with every generated block replaced by its command's output.
readme_blocks() {
  local in="$1" out="$2" cmd=""
  : > "$out"
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ -n "$cmd" ]]; then
      [[ "$line" == "<!-- end generated -->" ]] || continue
      printf '%s\n' "$line" >> "$out"
      cmd=""
      continue
    fi
    printf '%s\n' "$line" >> "$out"
    if [[ "$line" =~ ^\<!--\ generated:\ linearnexus\ (.*)\ --\>$ ]]; then
      cmd="${BASH_REMATCH[1]}"
      # shellcheck disable=SC2086
      "$bin" $cmd >> "$out"
    fi
  done < "$in"
  [[ -z "$cmd" ]] || { echo "gen_docs: $in: a generated block has no end marker" >&2; exit 1; }
}
readme_blocks "$root/README.md" "$tmp/README.md"

status=0
for pair in "mechanisms.md:docs/mechanisms.md" "mixers.md:docs/mixers.md" "README.md:README.md"; do
  src="$tmp/${pair%%:*}" dst="$root/${pair#*:}"
  if [ "$check" = 1 ]; then
    if ! cmp -s "$src" "$dst"; then
      echo "gen_docs: ${pair#*:} is not what the registries generate (run: bash scripts/gen_docs.sh)" >&2
      diff -u "$dst" "$src" | head -20 >&2 || true
      status=1
    fi
  else
    cp "$src" "$dst"
  fi
done
if [ "$check" = 1 ] && [ "$status" = 0 ]; then echo "gen_docs: docs/ and README tables are current"; fi
exit $status
