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

/* The hand-off decision. Whether plain loopback TCP carries a one-way run better than per-
 * message redirection depends on the write size, on the machine (see the config masks,
 * calibrated at attach) and on the layout: with writer and reader on one CPU they take turns,
 * and small writes, which TCP coalesces into large segments the reader then takes in one go,
 * usually go better over TCP; with the reader on another CPU both copy in parallel and the
 * redirect's shorter path wins even for small writes, while large ones depend on the machine's
 * copy and wakeup costs. The layout is read per flow at run time: reader_cpu.bpf.c records the
 * CPU the peer socket's reader last received data on, and the writer compares it with its own.
 *
 * A run is judged in windows of bulk_streak sends. A send whose size TCP carries better on
 * neither layout ends the window early (redirect-friendly flows pay nothing more). At the
 * window's end the window hands off when every send in it suits TCP on the layout read then,
 * and the peer sent nothing meanwhile; when it suits TCP on that layout only, the same layout
 * must also have been read for layout_hold_ms in a row (a hand-off cannot be taken back, and
 * an unpinned reader may visit the writer's CPU for a moment). */
static __always_inline __u32 size_log2(__u32 v)
{
	__u32 r = 0;

	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

static __always_inline void window_reset(struct meshaccel_flow *flow)
{
	flow->streak = 0;
	flow->win_need_same = 0;
	flow->win_need_other = 0;
}

/* Whether this window's sends all suit TCP on the layout read now (and, when only that layout
 * makes them suit TCP, read for long enough). peer_flow is the reader's flow state, or 0. */
static __always_inline int window_fits(const struct meshaccel_config *cfg, struct meshaccel_flow *flow,
				       const struct meshaccel_flow *peer_flow)
{
	__u32 read_cpu, layout;
	__u64 now;

	if (!flow->win_need_same && !flow->win_need_other)
		return 1;
	read_cpu = peer_flow ? READ_ONCE(peer_flow->read_cpu) : 0;
	/* A reader that has not read yet has no layout: wait for one. */
	if (!read_cpu) {
		flow->layout = 0;
		return 0;
	}
	layout = read_cpu - 1 == bpf_get_smp_processor_id() ? MESHACCEL_LAYOUT_SAME_CPU : MESHACCEL_LAYOUT_TWO_CPUS;
	meshaccel_count(layout == MESHACCEL_LAYOUT_SAME_CPU ? MESHACCEL_CTR_WINDOWS_SAME_CPU : MESHACCEL_CTR_WINDOWS_OTHER_CPU, 1);
	if (layout == MESHACCEL_LAYOUT_SAME_CPU ? flow->win_need_other : flow->win_need_same) {
		flow->layout = 0;
		return 0;
	}
	now = bpf_ktime_get_ns();
	if (flow->layout != layout + 1) {
		flow->layout = layout + 1;
		flow->layout_since_ns = now;
		return cfg->layout_hold_ms == 0;
	}
	return now - flow->layout_since_ns >= (__u64)cfg->layout_hold_ms * 1000000ull;
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

	/* The peer's flow state is read once per window, never written per message: a
	 * request/response pair then costs one hash lookup per message more than the bare redirect
	 * and does not bounce the peer's cache line between CPUs. */
	if (cfg->bulk_streak) {
		__u32 bit = size_log2(size);
		__u32 in_same = (cfg->tcp_same_cpu_mask >> bit) & 1, in_other = (cfg->tcp_other_cpu_mask >> bit) & 1;

		if (!in_same && !in_other) {
			if (flow->streak)
				window_reset(flow);
			flow->layout = 0;
		} else {
			if (in_same != in_other) {
				if (in_same)
					flow->win_need_same = 1;
				else
					flow->win_need_other = 1;
			}
			if (++flow->streak >= cfg->bulk_streak) {
				peer_flow = bpf_map_lookup_elem(&ma_flows, &peer);
				/* One-way only if the peer sent nothing since the last check (or since
				 * the flow began); otherwise this window starts over. */
				if (!peer_flow || peer_flow->sends == flow->peer_sends_seen) {
					if (window_fits(cfg, flow, peer_flow))
						return hand_off(flow, peer_flow, size);
				} else {
					flow->layout = 0;
				}
				if (peer_flow)
					flow->peer_sends_seen = peer_flow->sends;
				window_reset(flow);
			}
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
