#!/bin/bash
# The formatting gate: every C file of the tree is as clang-format (Debian's
# version 14, with the committed .clang-format) writes it.  Lists the files
# that are not, with the command that fixes them, and fails.
set -uo pipefail
cd "${MD_SOURCE_ROOT:?}" || exit 1
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files '*.c' '*.h')
else
    mapfile -t files < <(find . -name '*.[ch]' -not -path './build*' -not -path '*/node_modules/*')
fi
present=()
for f in "${files[@]}"; do
    [ -f "$f" ] && present+=("$f")
done
# One clang-format for all files (one per file spent most of its time starting).
out=$(clang-format --dry-run -Werror "${present[@]}" 2>&1 >/dev/null)
rc=$?
mapfile -t bad < <(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: .*clang-format-violations.*/\1/p' \
    <<<"$out" | sort -u)
echo "${#present[@]} C files checked"
if [ ${#bad[@]} -gt 0 ]; then
    printf 'not formatted: %s\n' "${bad[@]}"
    echo "fix: clang-format -i ${bad[*]}"
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    echo "clang-format failed: $out"
    exit 1
fi
