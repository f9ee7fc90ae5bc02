/* sk_msg: runs on every sendmsg of a socket in the sockhash and hands the message to the
 * peer socket's ingress queue, skipping the TCP/IP stack. Anything it cannot or should not
 * redirect is passed to TCP, never dropped. */
#include "meshaccel_compat.h"
#include "meshaccel_abi.h"
#include "meshaccel_maps.h"
#include "meshaccel_keys.h"

/* Hands this message to TCP and pins the socket to TCP for the rest of its life (see
 * MESHACCEL_FLOW_TCP_ONLY: the peer reads redirected data first, so a later redirect after a
 * pass would overtake the passed bytes). */
static __always_inline int pass_for_good(struct meshaccel_flow *flow, __u32 size)
{
	if (flow)
		flow->flags |= MESHACCEL_FLOW_TCP_ONLY;
	meshaccel_count(MESHACCEL_CTR_PASS_MSGS, 1);
	meshaccel_count(MESHACCEL_CTR_PASS_BYTES, size);
	return SK_PASS;
}

SEC("sk_msg")
int meshaccel_sk_msg(struct sk_msg_md *msg)
{
	struct meshaccel_sock_key self, peer;
	struct meshaccel_flow *flow, *peer_flow;
	struct meshaccel_config *cfg;
	__u32 size = msg->size;
	int ok;

	MESHACCEL_FILL_KEY(msg, &self, ok);
	if (!ok)
		return pass_for_good(0, size);
	self.netns = bpf_get_netns_cookie(msg);

	flow = bpf_map_lookup_elem(&ma_flows, &self);
	cfg = meshaccel_config();
	if (!flow || !cfg || cfg->mode == MESHACCEL_MODE_OFF || (flow->flags & MESHACCEL_FLOW_TCP_ONLY))
		return pass_for_good(flow, size);

	meshaccel_peer_key(&self, &peer);

	/* Our send ends the peer's run of one-way sends. Written only when non-zero so a
	 * request/response pair does not bounce the peer's cache line on every message. */
	peer_flow = bpf_map_lookup_elem(&ma_flows, &peer);
	if (peer_flow && peer_flow->streak)
		peer_flow->streak = 0;

	if (cfg->bulk_streak && size < cfg->bulk_small_max) {
		if (++flow->streak >= cfg->bulk_streak) {
			/* Both ends go TCP-only now: the peer must not redirect into us any more,
			 * because we are about to leave the sockhash (and a socket leaving it
			 * discards whatever sits unread in its redirect queue). */
			__u64 now = bpf_ktime_get_ns();
			flow->flags |= MESHACCEL_FLOW_LEAVE;
			flow->handoff_ns = now;
			if (peer_flow) {
				peer_flow->flags |= MESHACCEL_FLOW_TCP_ONLY | MESHACCEL_FLOW_LEAVE;
				peer_flow->handoff_ns = now;
			}
			meshaccel_count(MESHACCEL_CTR_BULK_HANDOFFS, 1);
			return pass_for_good(flow, size);
		}
	} else if (flow->streak) {
		flow->streak = 0;
	}

	/* bpf_msg_redirect_hash returns SK_DROP when the peer is not in the map (outside the
	 * cgroup, established before attach, or not yet inserted): pass instead of dropping. */
	if (bpf_msg_redirect_hash(msg, &ma_socks, &peer, BPF_F_INGRESS) != SK_PASS) {
		meshaccel_count(MESHACCEL_CTR_MISS_MSGS, 1);
		return pass_for_good(flow, size);
	}
	meshaccel_count(MESHACCEL_CTR_REDIRECT_MSGS, 1);
	meshaccel_count(MESHACCEL_CTR_REDIRECT_BYTES, size);
	return SK_PASS;
}

MESHACCEL_LICENSE;
