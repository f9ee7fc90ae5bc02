/* sockops: records established loopback sockets in the sockhash under a netns-aware key, so
 * the sk_msg program can hand each message straight to the peer socket. Also owns the flow
 * state's lifetime: created here at establishment, removed on close. */
#include "meshaccel_compat.h"
#include "meshaccel_abi.h"
#include "meshaccel_maps.h"
#include "meshaccel_keys.h"
#include "meshaccel_psock.h"

/* Callbacks that give a TCP-only socket the chance to leave the sockhash: RTT samples (on ACKs
 * of data it sends over TCP) for the sending end, and every received TCP header for the
 * receiving end. Redirected traffic produces neither, so accelerated sockets pay nothing. */
#define MA_LEAVE_CB_FLAGS (BPF_SOCK_OPS_RTT_CB_FLAG | BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG)

/* Turns off the leave callbacks, but only those this program turned on: the flags are per
 * socket and shared with any other sock_ops program in the cgroup hierarchy. */
static __always_inline void drop_leave_callbacks(struct bpf_sock_ops *skops, struct meshaccel_flow *flow)
{
	__u32 ours = flow->cb_flags & MA_LEAVE_CB_FLAGS;

	if (!ours)
		return;
	flow->cb_flags &= ~ours;
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~ours);
}

/* Whether the peer can never again redirect into this socket (MESHACCEL_FLOW_PEER_QUIET).
 * A redirect is decided by the peer's sk_msg verdict and carried out later in the same send,
 * after the peer has dropped its socket lock; for that whole send the peer holds a reference
 * on its own psock. So once the peer is TCP-only (its later verdicts all pass), seeing its
 * psock held by the sockhash alone means no such redirect is pending. */
static __always_inline int peer_quiet(struct meshaccel_flow *flow, const struct meshaccel_sock_key *key)
{
	struct meshaccel_sock_key pk;
	struct meshaccel_flow *peer;
	__u64 psock;

	if (flow->flags & MESHACCEL_FLOW_PEER_QUIET)
		return 1;
	meshaccel_peer_key(key, &pk);
	peer = bpf_map_lookup_elem(&ma_flows, &pk);
	if (peer) {
		if (!(peer->flags & MESHACCEL_FLOW_TCP_ONLY)) {
			/* The peer still redirects (our own sends missed it): stop that first. */
			meshaccel_flow_tcp_only(peer, 0);
			return 0;
		}
		psock = ma_sock_psock(peer->sk);
		/* A psock is released only when nothing holds it, so 0 means no send of the peer's is
		 * in progress and none will take the sockmap path again. */
		if (psock != 0) {
			/* Count first, then LEFT: the peer marks LEFT before it leaves, and after leaving
			 * its one remaining reference can be a send in progress, not the sockhash. */
			if (ma_psock_refs(psock) != 1)
				return 0;
			if (READ_ONCE(peer->flags) & MESHACCEL_FLOW_LEFT)
				return 0;
		}
	}
	/* No peer state: it closed, or it was never accelerated (outside the cgroup, or
	 * established before attach), and then it never redirects. */
	__sync_fetch_and_or(&flow->flags, MESHACCEL_FLOW_PEER_QUIET);
	return 1;
}

/* A TCP-only socket still runs every send through the psock (tcp_bpf) path, which costs a copy
 * into an sk_msg and pushes each small write as its own segment; only leaving the sockhash
 * gives it TCP's native, coalescing path back. Leaving releases the psock once its last user
 * is done, and with it anything redirected into the socket and not yet read, so it happens
 * only when the peer can no longer redirect into us (peer_quiet) and our redirect queue is
 * empty (the application read everything). Our own send or receive in progress may still hold
 * the psock: it finishes on it, passing to TCP. Runs from the RTT callback (sending end) and
 * the header-parse callback (receiving end), both with the socket locked. */
static __always_inline void maybe_leave_sockhash(struct bpf_sock_ops *skops)
{
	struct meshaccel_sock_key key;
	struct meshaccel_flow *flow;
	struct meshaccel_config *cfg;
	int ok;

	MESHACCEL_FILL_KEY(skops, &key, ok);
	if (!ok)
		return;
	key.netns = bpf_get_netns_cookie(skops);
	flow = bpf_map_lookup_elem(&ma_flows, &key);
	/* Still redirecting: keep the callbacks (redirected traffic triggers none). */
	if (!flow || !(flow->flags & MESHACCEL_FLOW_TCP_ONLY))
		return;
	cfg = meshaccel_config();
	if (!cfg || cfg->leave_delay_ms == MESHACCEL_LEAVE_NEVER || (flow->flags & MESHACCEL_FLOW_LEFT)) {
		drop_leave_callbacks(skops, flow);
		return;
	}
	if (!flow->handoff_ns ||
	    bpf_ktime_get_ns() - flow->handoff_ns < (__u64)cfg->leave_delay_ms * 1000000ull)
		return;
	if (!peer_quiet(flow, &key)) {
		meshaccel_count(MESHACCEL_CTR_LEAVE_WAITS, 1);
		return;
	}
	if (!ma_psock_queue_empty(ma_sock_psock(flow->sk)))
		return;
	__sync_fetch_and_or(&flow->flags, MESHACCEL_FLOW_LEFT);
	if (bpf_map_delete_elem(&ma_socks, &key) == 0)
		meshaccel_count(MESHACCEL_CTR_SOCK_LEFT, 1);
	drop_leave_callbacks(skops, flow);
}

static __always_inline int port_selected(const struct meshaccel_sock_key *key)
{
	__u16 lp = key->local_port, rp = key->remote_port;
	return bpf_map_lookup_elem(&ma_ports, &lp) || bpf_map_lookup_elem(&ma_ports, &rp);
}

static __always_inline void on_established(struct bpf_sock_ops *skops)
{
	struct meshaccel_config *cfg = meshaccel_config();
	struct meshaccel_sock_key key;
	struct meshaccel_flow flow = {};
	int ok;

	if (!cfg || cfg->mode == MESHACCEL_MODE_OFF)
		return;
	MESHACCEL_FILL_KEY(skops, &key, ok);
	if (!ok)
		return;
	if (cfg->mode == MESHACCEL_MODE_PORTS && !port_selected(&key))
		return;
	key.netns = bpf_get_netns_cookie(skops);

	/* Flow state first: a socket in the sockhash without flow state would only ever pass. */
	flow.sk = (__u64)skops->sk;
	flow.cb_flags = (BPF_SOCK_OPS_STATE_CB_FLAG | MA_LEAVE_CB_FLAGS) & ~skops->bpf_sock_ops_cb_flags;
	if (!flow.sk || bpf_map_update_elem(&ma_flows, &key, &flow, BPF_ANY)) {
		meshaccel_count(MESHACCEL_CTR_SOCK_INSERT_ERR, 1);
		return;
	}
	if (bpf_sock_hash_update(skops, &ma_socks, &key, BPF_ANY)) {
		bpf_map_delete_elem(&ma_flows, &key);
		meshaccel_count(MESHACCEL_CTR_SOCK_INSERT_ERR, 1);
		return;
	}
	meshaccel_count(MESHACCEL_CTR_SOCK_INSERTED, 1);
	/* Marks the socket as ours for the reader-CPU program, with its key (best effort: without
	 * it the writer reads no layout and hands off only sizes that suit TCP on both). */
	if (skops->sk) {
		struct meshaccel_reader *rd = bpf_sk_storage_get(&ma_readers, skops->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

		if (rd) {
			rd->key = key;
			rd->cpu = 0;
		}
	}
	/* Ask for state changes so the flow state is dropped when the socket closes (the
	 * kernel removes the sockhash entry by itself), and for the callbacks that let a socket
	 * leave the sockhash once it is TCP-only. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | flow.cb_flags);
}

static __always_inline void on_close(struct bpf_sock_ops *skops)
{
	struct meshaccel_sock_key key;
	int ok;

	MESHACCEL_FILL_KEY(skops, &key, ok);
	if (!ok)
		return;
	key.netns = bpf_get_netns_cookie(skops);
	if (bpf_map_delete_elem(&ma_flows, &key) == 0)
		meshaccel_count(MESHACCEL_CTR_SOCK_CLOSED, 1);
}

SEC("sockops")
int meshaccel_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		on_established(skops);
		break;
	case BPF_SOCK_OPS_RTT_CB:
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		maybe_leave_sockhash(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE)
			on_close(skops);
		break;
	}
	return 1;
}

MESHACCEL_LICENSE;
