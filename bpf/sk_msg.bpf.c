/* sk_msg: runs on every sendmsg of a socket in the sockhash and hands the message to the
 * peer socket's ingress queue, skipping the TCP/IP stack. Anything it cannot or should not
 * redirect is passed to TCP, never dropped. */
#include "meshaccel_compat.h"
#include "meshaccel_abi.h"
#include "meshaccel_maps.h"
#include "meshaccel_keys.h"
#include "meshaccel_psock.h"

/* Hands this message to TCP and pins the socket to TCP for the rest of its life (see
 * MESHACCEL_FLOW_TCP_ONLY: the peer reads redirected data first, so a later redirect after a
 * pass would overtake the passed bytes). sockops then takes the socket out of the sockhash
 * once that is safe. */
static __always_inline int pass_for_good(struct meshaccel_flow *flow, __u32 size)
{
	if (flow && !(flow->flags & MESHACCEL_FLOW_TCP_ONLY))
		meshaccel_flow_tcp_only(flow, 0);
	meshaccel_count(MESHACCEL_CTR_PASS_MSGS, 1);
	meshaccel_count(MESHACCEL_CTR_PASS_BYTES, size);
	return SK_PASS;
}

/* What a send means for the hand-off streak: a run of bulk_streak sends that plain loopback TCP
 * carries better than per-message redirection, during which the peer sent nothing (a one-way
 * run), is handed to TCP. Those sends are:
 *   - small writes: TCP coalesces them into large segments, redirection moves each alone;
 *   - large writes that find the peer's socket locked, i.e. its reader still copying out the
 *     previous message on another CPU: the redirect then waits for that lock, so writer and
 *     reader take turns, where TCP lets them copy in parallel (its receive path queues to the
 *     socket backlog instead of waiting). Catching the reader is a matter of timing, so a large
 *     write that finds it idle takes one back instead of breaking the run: the run grows
 *     while most large writes find the reader busy. On one CPU almost none do (the reader
 *     runs only when the writer does not), so those flows keep redirecting.
 * Anything else breaks the run. */
enum streak_step { STREAK_BREAK, STREAK_COUNT, STREAK_BACK };

static __always_inline enum streak_step streak_step(const struct meshaccel_config *cfg, __u32 size,
						    const struct meshaccel_flow *peer_flow)
{
	if (size < cfg->bulk_small_max)
		return STREAK_COUNT;
	if (!cfg->bulk_large_min || size < cfg->bulk_large_min || !peer_flow)
		return STREAK_BREAK;
	return ma_sock_owned(peer_flow->sk) ? STREAK_COUNT : STREAK_BACK;
}

/* Both ends go TCP-only, so that both can leave the sockhash: a socket leaving it releases
 * whatever sits unread in its redirect queue, so the peer must stop redirecting into us first. */
static __always_inline int hand_off(struct meshaccel_flow *flow, struct meshaccel_flow *peer_flow, __u32 size)
{
	if (peer_flow) {
		/* This send holds one reference on our psock and the sockhash another. With no
		 * third, no other send of ours is between a redirect verdict and its redirect, and
		 * all later verdicts pass: nothing of ours can land in the peer's queue any more,
		 * so it need not wait for us to leave. */
		int alone = ma_psock_refs(ma_sock_psock(flow->sk)) == 2;

		meshaccel_flow_tcp_only(peer_flow, alone ? MESHACCEL_FLOW_PEER_QUIET : 0);
	}
	meshaccel_count(MESHACCEL_CTR_BULK_HANDOFFS, 1);
	return pass_for_good(flow, size);
}

SEC("sk_msg")
int meshaccel_sk_msg(struct sk_msg_md *msg)
{
	struct meshaccel_sock_key self, peer;
	struct meshaccel_flow *flow, *peer_flow;
	struct meshaccel_config *cfg;
	enum streak_step step;
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
	flow->sends++;

	/* The peer's state is read only for large writes and once per bulk_streak sends, never
	 * written per message: a request/response pair then costs one hash lookup (the redirect's)
	 * per message and does not bounce the peer's cache line between CPUs. */
	if (cfg->bulk_streak) {
		peer_flow = 0;
		if (size >= cfg->bulk_small_max && cfg->bulk_large_min && size >= cfg->bulk_large_min)
			peer_flow = bpf_map_lookup_elem(&ma_flows, &peer);
		step = streak_step(cfg, size, peer_flow);
		if (step == STREAK_COUNT && ++flow->streak >= cfg->bulk_streak) {
			if (!peer_flow)
				peer_flow = bpf_map_lookup_elem(&ma_flows, &peer);
			/* One-way only if the peer sent nothing since the last check (or since the
			 * flow began); otherwise this window starts over. */
			if (!peer_flow || peer_flow->sends == flow->peer_sends_seen)
				return hand_off(flow, peer_flow, size);
			flow->peer_sends_seen = peer_flow->sends;
			flow->streak = 0;
		} else if (step == STREAK_BREAK && flow->streak) {
			flow->streak = 0;
		} else if (step == STREAK_BACK && flow->streak) {
			flow->streak--;
		}
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
