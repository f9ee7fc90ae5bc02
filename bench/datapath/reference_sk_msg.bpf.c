/* The bench's reference sk_msg program: the raw prototype the targets were measured
 * with, reduced to building the key and redirecting (pass on a miss). No flow state, counters,
 * hand-off or configuration. `make bench-datapath` runs it beside meshaccel's own programs, so
 * what meshaccel's extra work costs is read from one run on one machine, not from figures taken
 * on another day. It shares sockops.bpf.c and the maps; only for benchmarks, never shipped. */
#include "meshaccel_compat.h"
#include "meshaccel_abi.h"
#include "meshaccel_maps.h"
#include "meshaccel_keys.h"

SEC("sk_msg")
int meshaccel_sk_msg(struct sk_msg_md *msg)
{
	struct meshaccel_sock_key self, peer;
	int ok;

	MESHACCEL_FILL_KEY(msg, &self, ok);
	if (!ok)
		return SK_PASS;
	self.netns = bpf_get_netns_cookie(msg);
	meshaccel_peer_key(&self, &peer);
	bpf_msg_redirect_hash(msg, &ma_socks, &peer, BPF_F_INGRESS);
	return SK_PASS;
}

MESHACCEL_LICENSE;
