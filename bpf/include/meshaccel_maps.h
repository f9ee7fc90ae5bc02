/* Maps shared by sockops.bpf.o and sk_msg.bpf.o. Each object declares all of them pinned by
 * name: the first object loaded creates and pins them under the pin root the loader passes,
 * the second (and any later start of the agent) reuses the pinned maps, so both programs see
 * the same sockets, config and counters. */
#ifndef MESHACCEL_MAPS_H
#define MESHACCEL_MAPS_H

#include "meshaccel_compat.h"
#include "meshaccel_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, MESHACCEL_SOCKHASH_MAX);
	__type(key, struct meshaccel_sock_key);
	__type(value, __u64); /* 8 bytes so userspace lookups return the socket cookie */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ma_socks SEC(".maps");

/* Plain hash, not LRU: evicting a TCP_ONLY flag would let a socket redirect again and reorder
 * its stream. Entries are removed by the sockops close callback. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MESHACCEL_SOCKHASH_MAX);
	__type(key, struct meshaccel_sock_key);
	__type(value, struct meshaccel_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ma_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct meshaccel_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ma_config SEC(".maps");

/* Sidecar ports for MESHACCEL_MODE_PORTS, host byte order. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MESHACCEL_PORTS_MAX);
	__type(key, __u16);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ma_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MESHACCEL_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ma_counters SEC(".maps");

/* Per-socket: see struct meshaccel_reader. Freed with the socket. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct meshaccel_reader);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ma_readers SEC(".maps");

static __always_inline void meshaccel_count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&ma_counters, &idx);
	if (v)
		*v += n; /* per-CPU slot, and programs do not migrate mid-run: no atomics needed */
}

/* Pins a flow to TCP (see MESHACCEL_FLOW_TCP_ONLY), stamping when, plus any extra flags. The
 * flags word is also written by the peer's programs, hence the atomic or. */
static __always_inline void meshaccel_flow_tcp_only(struct meshaccel_flow *flow, __u32 extra)
{
	if (!flow->handoff_ns)
		flow->handoff_ns = bpf_ktime_get_ns();
	__sync_fetch_and_or(&flow->flags, MESHACCEL_FLOW_TCP_ONLY | extra);
}

static __always_inline struct meshaccel_config *meshaccel_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&ma_config, &zero);
}

#endif /* MESHACCEL_MAPS_H */
