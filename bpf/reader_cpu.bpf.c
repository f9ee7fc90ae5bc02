/* reader_cpu: records, in the flow state of a socket in the sockhash, the CPU its reader last
 * received data on. The writer's sk_msg compares it with its own CPU, so a one-way run knows
 * whether writer and reader take turns on one CPU or copy in parallel on two: the costs that
 * decide between redirection and TCP (see sk_msg.bpf.c).
 * It runs on the sock_recv_length tracepoint (every recvmsg/read on a socket, as it returns)
 * as a BTF-typed tracepoint program: an fentry program on tcp_bpf_recvmsg would run for sockmap
 * sockets only, but this kernel kind refuses fentry programs (EPERM at load, under its forced
 * lockdown) while it loads tracepoint ones. A socket sockops did not mark (struct
 * meshaccel_reader) is left after one storage lookup, and ours do the flow lookup only when the
 * reader's CPU changed, so the common path is a lookup in the socket's own storage. */
#include "meshaccel_compat.h"
#include "meshaccel_abi.h"
#include "meshaccel_maps.h"
#include <bpf/bpf_tracing.h>

/* Only the type matters: the verifier types the tracepoint's argument from the kernel's BTF. */
struct sock;

SEC("tp_btf/sock_recv_length")
int BPF_PROG(meshaccel_reader_cpu, struct sock *sk, int ret, int flags)
{
	struct meshaccel_reader *rd;
	struct meshaccel_flow *flow;
	__u32 cpu;

	/* Only reads that returned data say where the reader runs. */
	if (ret <= 0 || !sk)
		return 0;
	rd = bpf_sk_storage_get(&ma_readers, sk, 0, 0);
	if (!rd)
		return 0;
	cpu = bpf_get_smp_processor_id() + 1;
	if (rd->cpu == cpu)
		return 0;
	flow = bpf_map_lookup_elem(&ma_flows, &rd->key);
	if (!flow)
		return 0;
	rd->cpu = cpu;
	/* Written only on a change: the writer reads this line once per window from its CPU. */
	flow->read_cpu = cpu;
	return 0;
}

MESHACCEL_LICENSE;
