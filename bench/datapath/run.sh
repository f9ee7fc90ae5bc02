#!/usr/bin/env bash
# make bench-datapath: compiles the C client/server, checks the requirements, then runs the
# side-by-side driver (plain loopback vs redirected, one run, one table). Needs root, the
# built BPF objects and addon (make build), cgroup v2, iproute2 and taskset.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "bench-datapath: needs root (BPF, cgroups, network namespaces)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "bench-datapath: taskset (util-linux) is missing" >&2; exit 1; }
out=bench/datapath/build
mkdir -p "$out"
cc=$(command -v gcc || command -v cc || command -v clang-14)
"$cc" -O2 -pthread -Wall -o "$out/netbench" bench/datapath/netbench.c
make -s -f bpf/Makefile SRCDIR="$PWD/bench/datapath" BUILDDIR="$PWD/$out"
[ -f dist/bench/datapath/driver.js ] || node_modules/.bin/tsc -p tsconfig.json >/dev/null || true
echo "bench-datapath: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); shared machine: compare the side-by-side ratios, not absolute figures"
exec node dist/bench/datapath/driver.js "$PWD/$out/netbench" "$PWD/$out/reference_sk_msg.o"
