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
 * IPv4 and IPv4-mapped IPv6 (::ffff:127.x) are both stored as AF_INET with the address in
 * ip[0], so a dual-stack listener's socket finds its IPv4 client and the reverse. */
struct meshaccel_sock_key {
	__u64 netns;          /* bpf_get_netns_cookie() of the socket */
	__u32 family;         /* AF_INET or AF_INET6 */
	__u16 local_port;     /* host byte order */
	__u16 remote_port;    /* host byte order */
	__u32 local_ip[4];    /* network byte order; IPv4 in [0], rest zero */
	__u32 remote_ip[4];
};

enum meshaccel_mode {
	MESHACCEL_MODE_OFF = 0,   /* insert nothing, redirect nothing */
	MESHACCEL_MODE_ALL = 1,   /* every loopback pair */
	MESHACCEL_MODE_PORTS = 2, /* only pairs where either port is in the ports map */
};

struct meshaccel_config {
	__u32 mode;            /* enum meshaccel_mode */
	/* A direction that sends this many small messages in a row while its peer sends nothing
	 * is a bulk small-write flow; loopback TCP coalesces those better than per-message
	 * redirection, so it is handed to TCP for good. 0 disables the hand-off. */
	__u32 bulk_streak;
	__u32 bulk_small_max;  /* a message shorter than this many bytes is "small" */
	/* A handed-off socket leaves the sockhash once both ends were TCP-only this long; 0 = it
	 * stays (TCP-only) for good. Long by default: a peer preempted between its redirect verdict
	 * and the redirect itself would otherwise find no psock and fail the send with EPIPE. */
	__u32 leave_delay_ms;
};

/* Per-socket redirection state, keyed like the sockhash. */
struct meshaccel_flow {
	__u32 streak;          /* consecutive small sends since the peer last sent */
	__u32 flags;           /* MESHACCEL_FLOW_* */
	__u64 handoff_ns;      /* bpf_ktime_get_ns() of the bulk hand-off, 0 if none */
};

/* Once a socket has handed one message to TCP it never redirects again: its peer reads
 * redirected data before TCP data, so redirect-after-pass would reorder the stream. */
#define MESHACCEL_FLOW_TCP_ONLY 1u
/* Handed off as a bulk small-write flow: sockops removes the socket from the sockhash (so it
 * leaves the sk_msg path entirely and TCP's own send path, which coalesces small writes,
 * takes over) once that is safe. See sockops.bpf.c:maybe_leave_sockhash(). */
#define MESHACCEL_FLOW_LEAVE 2u
/* A socket leaves the sockhash no sooner than this after its hand-off. */

enum meshaccel_counter {
	MESHACCEL_CTR_REDIRECT_MSGS = 0,
	MESHACCEL_CTR_REDIRECT_BYTES,
	MESHACCEL_CTR_MISS_MSGS,       /* peer not in the sockhash: passed to TCP */
	MESHACCEL_CTR_PASS_MSGS,       /* every message handed to TCP, misses included */
	MESHACCEL_CTR_PASS_BYTES,
	MESHACCEL_CTR_BULK_HANDOFFS,   /* directions handed to TCP as bulk small-write flows */
	MESHACCEL_CTR_SOCK_INSERTED,   /* established sockets added to the sockhash */
	MESHACCEL_CTR_SOCK_INSERT_ERR, /* flow or sockhash update failed: socket stays plain TCP */
	MESHACCEL_CTR_SOCK_CLOSED,     /* flow state removed on close */
	MESHACCEL_CTR_SOCK_LEFT,       /* handed-off sockets removed from the sockhash */
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
