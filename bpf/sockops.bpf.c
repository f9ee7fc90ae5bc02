/* sockops: records established loopback sockets in the sockhash under a netns-aware key, so
 * the sk_msg program can hand each message straight to the peer socket. Also owns the flow
 * state's lifetime: created here at establishment, removed on close. */
#include "meshaccel_compat.h"
#include "meshaccel_abi.h"
#include "meshaccel_maps.h"
#include "meshaccel_keys.h"
#include <bpf/bpf_core_read.h>

/* Callbacks that give a handed-off socket the chance to leave the sockhash: RTT samples (on
 * ACKs of data it sends over TCP) for the sending end, and every received TCP header for the
 * receiving end. Redirected traffic produces neither, so accelerated sockets pay nothing. */
#define MA_LEAVE_CB_FLAGS (BPF_SOCK_OPS_RTT_CB_FLAG | BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG)

/* The two kernel structures read to see whether a socket's redirect queue is empty. Only the
 * fields used are declared; CO-RE relocates their offsets against the running kernel's BTF. */
struct list_head___ma {
	struct list_head___ma *next, *prev;
} __attribute__((preserve_access_index));

struct sock___ma {
	void *sk_user_data;
} __attribute__((preserve_access_index));

struct atomic___ma {
	int counter;
} __attribute__((preserve_access_index));

struct refcount_struct___ma {
	struct atomic___ma refs;
} __attribute__((preserve_access_index));

struct sk_psock___ma {
	struct list_head___ma ingress_msg;
	struct refcount_struct___ma refcnt;
} __attribute__((preserve_access_index));

/* sk_user_data carries flag bits (SK_USER_DATA_NOCOPY|BPF|PSOCK) below the psock pointer. */
#define MA_USER_DATA_PTRMASK (~7ul)

/* 1 when the socket's psock can be released without discarding anything: its redirect queue
 * is empty and nobody but the sockhash holds it (a peer about to enqueue into it holds a
 * reference from before it takes our lock until after the enqueue). 0 when it cannot, or when
 * the kernel structures cannot be read. */
static __always_inline int psock_idle(struct bpf_sock *bsk)
{
	struct sock___ma *sk;
	struct sk_psock___ma *psock;
	unsigned long ud = 0;
	void *next = 0;
	int refs = 0;

	if (!bsk)
		return 0;
	sk = (struct sock___ma *)bpf_skc_to_tcp_sock(bsk);
	if (!sk)
		return 0;
	if (bpf_core_read(&ud, sizeof(ud), &sk->sk_user_data))
		return 0;
	psock = (struct sk_psock___ma *)(ud & MA_USER_DATA_PTRMASK);
	if (!psock)
		return 0;
	if (bpf_core_read(&next, sizeof(next), &psock->ingress_msg.next) ||
	    bpf_core_read(&refs, sizeof(refs), &psock->refcnt.refs.counter))
		return 0;
	return next == (void *)&psock->ingress_msg && refs == 1;
}

/* A socket handed off as a bulk small-write flow still runs through the psock (tcp_bpf)
 * send path, which pushes every small write as its own segment; only leaving the sockhash
 * gives it TCP's native, coalescing path back. Leaving frees the psock, and with it any
 * redirected bytes not yet read, so it happens only when:
 *   - both ends have been TCP-only for the configured leave_delay_ms: new sends by the peer pass,
 *     and a redirect it decided before the hand-off has had time to complete (its enqueue
 *     takes this socket's lock, which we hold here, so it is either done or not started), and
 *   - the socket's redirect queue is empty (its application read everything), and
 *   - the sockhash holds the only psock reference: a peer whose redirect was decided before
 *     the hand-off takes a reference before it waits for our lock, so it is seen here even
 *     if it has been descheduled for longer than the delay. Our own sendmsg also holds one,
 *     so this succeeds on an ACK processed while the application is between writes.
 * This runs from the RTT callback (sending end) and the header-parse callback (receiving end),
 * both with the socket locked. The one window left: a peer descheduled for longer than the
 * delay between its redirect verdict and taking the psock reference. That path includes
 * release_sock(), where a task throttled by a CPU quota can sit for tens of milliseconds, so
 * the delay defaults to a second and 0 keeps handed-off sockets in the sockhash. */
static __always_inline void maybe_leave_sockhash(struct bpf_sock_ops *skops)
{
	struct meshaccel_sock_key key;
	struct meshaccel_flow *flow;
	int ok;

	MESHACCEL_FILL_KEY(skops, &key, ok);
	if (!ok)
		return;
	key.netns = bpf_get_netns_cookie(skops);
	flow = bpf_map_lookup_elem(&ma_flows, &key);
	if (!flow || !(flow->flags & MESHACCEL_FLOW_LEAVE)) {
		/* Only sockets waiting to leave need RTT callbacks. */
		if (!flow || (flow->flags & MESHACCEL_FLOW_TCP_ONLY))
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~MA_LEAVE_CB_FLAGS);
		return;
	}
	struct meshaccel_config *cfg = meshaccel_config();
	if (!cfg || !cfg->leave_delay_ms) {
		/* Leaving is off: stay TCP-only in the sockhash and stop the callbacks. */
		flow->flags &= ~MESHACCEL_FLOW_LEAVE;
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~MA_LEAVE_CB_FLAGS);
		return;
	}
	if (bpf_ktime_get_ns() - flow->handoff_ns < (__u64)cfg->leave_delay_ms * 1000000ull || !psock_idle(skops->sk))
		return;
	flow->flags &= ~MESHACCEL_FLOW_LEAVE;
	if (bpf_map_delete_elem(&ma_socks, &key) == 0)
		meshaccel_count(MESHACCEL_CTR_SOCK_LEFT, 1);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~MA_LEAVE_CB_FLAGS);
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
	if (bpf_map_update_elem(&ma_flows, &key, &flow, BPF_ANY)) {
		meshaccel_count(MESHACCEL_CTR_SOCK_INSERT_ERR, 1);
		return;
	}
	if (bpf_sock_hash_update(skops, &ma_socks, &key, BPF_ANY)) {
		bpf_map_delete_elem(&ma_flows, &key);
		meshaccel_count(MESHACCEL_CTR_SOCK_INSERT_ERR, 1);
		return;
	}
	meshaccel_count(MESHACCEL_CTR_SOCK_INSERTED, 1);
	/* Ask for state changes so the flow state is dropped when the socket closes (the
	 * kernel removes the sockhash entry by itself), and for RTT samples, which come only
	 * with TCP-sent data: that is when a handed-off socket may leave the sockhash. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG |
					  MA_LEAVE_CB_FLAGS);
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
