#!/usr/bin/env bash
# make bench-redirect: nftables TPROXY vs tc bpf_sk_assign vs iptables REDIRECT (and direct),
# side by side in one run, in network namespaces it creates and deletes. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
  echo "bench-redirect: needs root (creates network namespaces, nft/iptables rules, tc programs)" >&2
  exit 1
fi
for tool in nft iptables ip tc bpftool nsenter taskset; do
  command -v "$tool" >/dev/null || { echo "bench-redirect: missing $tool (run make setup)" >&2; exit 1; }
done
exec node dist/bench/redirect/bench-redirect.js
