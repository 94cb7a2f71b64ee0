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
bad=()
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
echo "${#files[@]} C files checked"
if [ ${#bad[@]} -gt 0 ]; then
    printf 'not formatted: %s\n' "${bad[@]}"
    echo "fix: clang-format -i ${bad[*]}"
    exit 1
fi
