/* sockops: records established loopback sockets in the sockhash under a netns-aware key, so
 * the sk_msg program can hand each message straight to the peer socket. Also owns the flow
 * state's lifetime: created here at establishment, removed on close. */
#include "meshaccel_compat.h"
#include "meshaccel_abi.h"
#include "meshaccel_maps.h"
#include "meshaccel_keys.h"

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
	 * kernel removes the sockhash entry by itself). */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
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
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE)
			on_close(skops);
		break;
	}
	return 1;
}

MESHACCEL_LICENSE;
