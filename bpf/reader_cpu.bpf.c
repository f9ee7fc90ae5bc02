/* reader_cpu: records, in the flow state of a socket in the sockhash, the CPU its reader last
 * received data on. The writer's sk_msg compares it with its own CPU, so a one-way run knows
 * whether writer and reader take turns on one CPU or copy in parallel on two: the costs that
 * decide between redirection and TCP (see sk_msg.bpf.c).
 * It runs on the sock_recv_length tracepoint (every recvmsg/read on a socket, as it returns)
 * as a BTF-typed tracepoint program: an fentry program on tcp_bpf_recvmsg would run for sockmap
 * sockets only, but this kernel kind refuses fentry programs (EPERM at load, under its forced
 * lockdown) while it loads tracepoint ones. A socket without sk_user_data (a psock sets it) is
 * left after one load, so other sockets pay the tracepoint and a few instructions. */
#include "meshaccel_compat.h"
#include "meshaccel_abi.h"
#include "meshaccel_maps.h"
#include "meshaccel_keys.h"
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/* The fields of the kernel's struct sock read here; CO-RE relocates the offsets against the
 * running kernel's BTF, and the verifier checks each load against the real type. */
struct in6_addr___ma {
	union {
		__u32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

struct net___ma {
	__u64 net_cookie;
} __attribute__((preserve_access_index));

struct possible_net___ma {
	struct net___ma *net;
} __attribute__((preserve_access_index));

struct sock_common___ma {
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	__u16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct possible_net___ma skc_net;
	struct in6_addr___ma skc_v6_daddr;
	struct in6_addr___ma skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock___ma2 {
	struct sock_common___ma __sk_common;
	void *sk_user_data;
} __attribute__((preserve_access_index));

/* The key sockops gave this socket (see MESHACCEL_FILL_KEY): 1 when it is one we accelerate. */
static __always_inline int key_of_sock(struct sock___ma2 *sk, struct meshaccel_sock_key *key)
{
	struct sock_common___ma *c = &sk->__sk_common;
	__u16 family = c->skc_family;

	__builtin_memset(key, 0, sizeof(*key));
	key->local_port = c->skc_num;
	key->remote_port = bpf_ntohs(c->skc_dport);
	key->netns = c->skc_net.net->net_cookie;
	if (family == AF_INET) {
		key->family = AF_INET;
		key->local_ip4 = c->skc_rcv_saddr;
		key->remote_ip4 = c->skc_daddr;
		return 1;
	}
	if (family != AF_INET6)
		return 0;
	__u32 l0 = c->skc_v6_rcv_saddr.in6_u.u6_addr32[0], l1 = c->skc_v6_rcv_saddr.in6_u.u6_addr32[1];
	__u32 l2 = c->skc_v6_rcv_saddr.in6_u.u6_addr32[2], l3 = c->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
	__u32 r0 = c->skc_v6_daddr.in6_u.u6_addr32[0], r1 = c->skc_v6_daddr.in6_u.u6_addr32[1];
	__u32 r2 = c->skc_v6_daddr.in6_u.u6_addr32[2], r3 = c->skc_v6_daddr.in6_u.u6_addr32[3];
	if (is_v4mapped(l0, l1, l2) && is_v4mapped(r0, r1, r2)) {
		key->family = AF_INET;
		key->local_ip4 = l3;
		key->remote_ip4 = r3;
		return 1;
	}
	key->family = AF_INET6;
	return is_loopback6(l0, l1, l2, l3) && is_loopback6(r0, r1, r2, r3);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(meshaccel_reader_cpu, struct sock___ma2 *sk, int ret, int flags)
{
	struct meshaccel_sock_key key;
	struct meshaccel_flow *flow;
	__u32 cpu;

	/* Only reads that returned data say where the reader runs; only sockets with a psock can
	 * be in our sockhash. */
	if (ret <= 0 || !sk || !sk->sk_user_data || !key_of_sock(sk, &key))
		return 0;
	flow = bpf_map_lookup_elem(&ma_flows, &key);
	if (!flow)
		return 0;
	cpu = bpf_get_smp_processor_id() + 1;
	/* Written only on a change: the writer reads this line once per window from its CPU. */
	if (flow->read_cpu != cpu)
		flow->read_cpu = cpu;
	return 0;
}

MESHACCEL_LICENSE;
