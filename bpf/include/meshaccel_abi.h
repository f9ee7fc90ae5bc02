/* The layout shared by the BPF programs and the userspace addon (bpf_addon.cc includes this
 * file): map keys and values, counter indices, modes and pin names. Only fixed-width types and
 * explicit padding, so both compilers agree on every offset. Changing a layout changes a map's
 * key or value size, and libbpf then refuses to adopt an older pinned map instead of misreading
 * it. */
#ifndef MESHACCEL_ABI_H
#define MESHACCEL_ABI_H

#include <linux/types.h>

/* A loopback socket as seen from its own side. Cilium's and Merbridge's keys stop at the
 * 4-tuple, so two pods using the same loopback ports collide; the netns cookie separates them.
 * IPv4 and IPv4-mapped IPv6 (::ffff:127.x) are both stored as AF_INET, so a dual-stack
 * listener's socket finds its IPv4 client and the reverse. IPv6 has one loopback address, ::1,
 * so an AF_INET6 key needs no address at all: 24 bytes instead of 48, which every message pays
 * for twice (flow state and sockhash lookups hash and compare the whole key). */
struct meshaccel_sock_key {
	__u64 netns;          /* bpf_get_netns_cookie() of the socket */
	__u32 local_ip4;      /* network byte order; 0 for AF_INET6 (::1) */
	__u32 remote_ip4;
	__u16 local_port;     /* host byte order */
	__u16 remote_port;    /* host byte order */
	__u32 family;         /* AF_INET or AF_INET6 */
};

enum meshaccel_mode {
	MESHACCEL_MODE_OFF = 0,   /* insert nothing, redirect nothing */
	MESHACCEL_MODE_ALL = 1,   /* every loopback pair */
	MESHACCEL_MODE_PORTS = 2, /* only pairs where either port is in the ports map */
};

struct meshaccel_config {
	__u32 mode;            /* enum meshaccel_mode */
	/* A direction that sends this many messages in a row that loopback TCP carries better
	 * (small ones, or large ones that find the reader busy), while its peer sends nothing, is
	 * handed to TCP for good. 0 disables the hand-off. */
	__u32 bulk_streak;
	__u32 bulk_small_max;  /* a message shorter than this many bytes is "small" */
	/* Messages of at least this many bytes that find the peer still reading count toward the
	 * same streak (see sk_msg.bpf.c); 0 = only small messages do. */
	__u32 bulk_large_min;
	/* A socket handed to TCP (TCP_ONLY) leaves the sockhash, and so the sk_msg send path, once
	 * that cannot lose or reorder bytes (see sockops.bpf.c:maybe_leave_sockhash()) and at least
	 * this long after its hand-off. MESHACCEL_LEAVE_NEVER keeps such sockets in the sockhash. */
	__u32 leave_delay_ms;
};

#define MESHACCEL_LEAVE_NEVER 0xffffffffu

/* Per-socket redirection state, keyed like the sockhash. Written by this socket's programs
 * under its lock, and by the peer's (flags only, atomically). */
struct meshaccel_flow {
	__u32 streak;          /* consecutive sends that count toward a hand-off (see sk_msg.bpf.c) */
	__u32 flags;           /* MESHACCEL_FLOW_* */
	__u64 handoff_ns;      /* bpf_ktime_get_ns() when the socket went TCP-only, 0 before */
	/* Kernel address of the socket, recorded at insertion so the peer's programs can read its
	 * psock (meshaccel_psock.h); only ever dereferenced through bpf_probe_read_kernel. */
	__u64 sk;
	__u32 cb_flags;        /* sock_ops callback flags this program turned on (and may turn off) */
	__u32 sends;           /* messages this socket sent through sk_msg */
	__u32 peer_sends_seen; /* the peer's `sends` at the last one-way check */
	__u32 pad;
};

/* Once a socket has handed one message to TCP it never redirects again: its peer reads
 * redirected data before TCP data, so redirect-after-pass would reorder the stream. A TCP-only
 * socket then leaves the sockhash as soon as that is safe, which gives it TCP's own send path
 * back (the sk_msg path pushes every small write as its own segment). */
#define MESHACCEL_FLOW_TCP_ONLY 1u
/* The peer can never again redirect into this socket: it is TCP-only and was seen with no send
 * in progress (or it is gone). Until then, leaving could free this socket's psock under a
 * redirect the peer decided earlier: its send would fail with EPIPE, or its bytes be lost. */
#define MESHACCEL_FLOW_PEER_QUIET 2u
/* Left the sockhash (set just before the delete, see peer_quiet() in sockops.bpf.c). */
#define MESHACCEL_FLOW_LEFT 4u

enum meshaccel_counter {
	MESHACCEL_CTR_REDIRECT_MSGS = 0,
	MESHACCEL_CTR_REDIRECT_BYTES,
	MESHACCEL_CTR_MISS_MSGS,       /* peer not in the sockhash: passed to TCP */
	MESHACCEL_CTR_PASS_MSGS,       /* every message handed to TCP, misses included */
	MESHACCEL_CTR_PASS_BYTES,
	MESHACCEL_CTR_BULK_HANDOFFS,   /* one-way runs handed to TCP (see bulk_streak) */
	MESHACCEL_CTR_SOCK_INSERTED,   /* established sockets added to the sockhash */
	MESHACCEL_CTR_SOCK_INSERT_ERR, /* flow or sockhash update failed: socket stays plain TCP */
	MESHACCEL_CTR_SOCK_CLOSED,     /* flow state removed on close */
	MESHACCEL_CTR_SOCK_LEFT,       /* TCP-only sockets removed from the sockhash */
	MESHACCEL_CTR_LEAVE_WAITS,     /* leave checks that waited for the peer to stop sending */
	MESHACCEL_CTR_MAX = 16,
};

#define MESHACCEL_SOCKHASH_MAX 65536
#define MESHACCEL_PORTS_MAX 1024

/* Pinned object names under the pin directory (maps are pinned by libbpf under their map
 * names; BPF object names are limited to 15 characters). */
#define MESHACCEL_MAP_SOCKS "ma_socks"
#define MESHACCEL_MAP_FLOWS "ma_flows"
#define MESHACCEL_MAP_CONFIG "ma_config"
#define MESHACCEL_MAP_PORTS "ma_ports"
#define MESHACCEL_MAP_COUNTERS "ma_counters"
#define MESHACCEL_PIN_SOCKOPS "prog_sockops"
#define MESHACCEL_PIN_SK_MSG "prog_sk_msg"
#define MESHACCEL_PIN_LINK "link_sockops"

#endif /* MESHACCEL_ABI_H */
