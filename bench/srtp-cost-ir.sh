#!/bin/sh
# Instructions per packet of mdb-srtp-cost's cases, counted by callgrind: a
# figure that does not move with the machine's load (docs/internals/bench.md,
# "SRTP per packet").  Valgrind emulates the CPU without AVX-512, so a
# library that would use it natively takes its AVX2 path here.
# usage: bench/srtp-cost-ir.sh [BUILD_DIR] [COUNT]
set -eu
build=${1:-build}
count=${2:-20000}
exe=$build/bench/mdb-srtp-cost
[ -x "$exe" ] || { echo "srtp-cost-ir: $exe is not built" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "srtp-cost-ir: valgrind is missing" >&2; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$dir/cg" \
    "$exe" --count "$count" --warmup $((count / 10)) --repeats 1 >/dev/null 2>"$dir/log" ||
    { cat "$dir/log" >&2; exit 1; }
# Each measured loop is one dump named "<profile> <path> <payload> <op>".
for f in "$dir"/cg.*; do
    awk -v n="$count" '
        /^desc: Trigger: Client Request: / { sub(/^desc: Trigger: Client Request: /, ""); label = $0 }
        /^summary: / { ir = $2 }
        END { if (label != "") printf "%s %.0f\n", label, ir / n }' "$f"
done | sort >"$dir/ir"
# One line per profile, payload and op, libsrtp2 beside OpenSSL; unprotect is
# forward - protect as in mdb-srtp-cost.
awk '
    { v[$1 " " $3 " " $4, $2] = $5; key[$1 " " $3] = 1 }
    END {
        printf "%-24s %7s %-10s %14s %14s %9s\n", "profile", "payload", "op", "libsrtp2 Ir", "OpenSSL Ir", "OSSL/lib"
        for (k in key) {
            split(k, a, " ")
            lp = v[k " protect", "libsrtp2"]; lf = v[k " forward", "libsrtp2"]
            op = v[k " protect", "OpenSSL"]; of = v[k " forward", "OpenSSL"]
            printf "%-24s %7s %-10s %14d %14d %9.2f\n", a[1], a[2], "protect", lp, op, op / lp
            printf "%-24s %7s %-10s %14d %14d %9.2f\n", a[1], a[2], "unprotect", lf - lp, of - op, (of - op) / (lf - lp)
            printf "%-24s %7s %-10s %14d %14d %9.2f\n", a[1], a[2], "forward", lf, of, of / lf
        }
    }' "$dir/ir" | { IFS= read -r head; echo "$head"; sort -k1,1 -k2,2n -s; }
