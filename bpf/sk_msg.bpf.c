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
 * message redirection depends on the write size and on the machine (see the config masks,
 * calibrated at attach): small writes, which TCP coalesces into large segments, usually go
 * better over TCP; large ones depend on the machine's copy and wakeup costs, and on whether the
 * reader runs concurrently on another CPU. There the redirect waits for the reader's socket lock
 * while it copies out, so writer and reader take turns, where TCP's receive path queues to the
 * socket backlog and both copy in parallel; on one CPU the reader only runs when the writer
 * does not, and the per-message path may win or lose by machine.
 *
 * A run is judged in windows of bulk_streak sends. A send whose size TCP carries better in
 * neither case ends the window early (redirect-friendly flows pay nothing more). A send whose
 * verdict depends on the reader notes it and reads the reader's lock; at the window's end the
 * window counts as "reader busy" when at least a quarter of those reads found it locked (on one
 * CPU none did in 100,000 windows measured here; on two CPUs runs of 16 KiB writes and larger
 * read busy within a few windows, 4 KiB ones hardly ever, see thresholds.ts). The window hands
 * off when every send in it suits TCP under that reading, and the peer sent nothing meanwhile;
 * when it suits TCP only because the reader read as idle, its windows must also have read idle
 * for idle_handoff_ms in a row: on two CPUs a reader that is slow to wake (or preempted) reads
 * idle for a while, and a hand-off cannot be taken back, while a busy reading is not seen there. */
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
	flow->win_busy = 0;
	flow->win_need_idle = 0;
	flow->win_need_busy = 0;
}

/* Whether this window, judged with the reader busy or idle, may hand off on that reading. */
static __always_inline int reading_allows(const struct meshaccel_config *cfg, struct meshaccel_flow *flow, int busy)
{
	__u64 now;

	if (busy) {
		flow->idle_since_ns = 0;
		return !flow->win_need_idle;
	}
	if (flow->win_need_busy)
		return 0;
	if (!flow->win_need_idle)
		return 1;
	now = bpf_ktime_get_ns();
	if (!flow->idle_since_ns) {
		flow->idle_since_ns = now;
		return cfg->idle_handoff_ms == 0;
	}
	return now - flow->idle_since_ns >= (__u64)cfg->idle_handoff_ms * 1000000ull;
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
	 * request/response pair then costs one hash lookup (the redirect's) per message and does not
	 * bounce the peer's cache line between CPUs. */
	if (cfg->bulk_streak) {
		__u32 bit = size_log2(size);
		__u32 in_idle = (cfg->tcp_idle_mask >> bit) & 1, in_busy = (cfg->tcp_busy_mask >> bit) & 1;

		peer_flow = 0;
		if (!in_idle && !in_busy) {
			if (flow->streak)
				window_reset(flow);
			flow->idle_since_ns = 0;
		} else {
			if (in_idle != in_busy) {
				if (!flow->peer_sk) {
					peer_flow = bpf_map_lookup_elem(&ma_flows, &peer);
					if (peer_flow)
						flow->peer_sk = peer_flow->sk;
				}
				if (ma_sock_owned(flow->peer_sk) && flow->win_busy < 0xffff)
					flow->win_busy++;
				if (in_idle)
					flow->win_need_idle = 1;
				else
					flow->win_need_busy = 1;
			}
			if (++flow->streak >= cfg->bulk_streak) {
				int fits = 1, one_way;

				if (flow->win_need_idle || flow->win_need_busy) {
					int busy = (__u32)flow->win_busy * 4 >= flow->streak;

					fits = reading_allows(cfg, flow, busy);
					meshaccel_count(busy ? MESHACCEL_CTR_WINDOWS_BUSY : MESHACCEL_CTR_WINDOWS_IDLE, 1);
				}
				if (!peer_flow)
					peer_flow = bpf_map_lookup_elem(&ma_flows, &peer);
				/* One-way only if the peer sent nothing since the last check (or since
				 * the flow began); otherwise this window starts over. */
				one_way = !peer_flow || peer_flow->sends == flow->peer_sends_seen;
				if (fits && one_way)
					return hand_off(flow, peer_flow, size);
				if (!one_way)
					flow->idle_since_ns = 0;
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
