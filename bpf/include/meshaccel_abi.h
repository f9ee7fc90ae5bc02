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

/* Write sizes a calibration measures (log2 of the bytes: 1 KiB to 1 MiB), and the layouts. */
#define MESHACCEL_CALIB_SIZES 6
#define MESHACCEL_CALIB_LOG2_FIRST 10
#define MESHACCEL_CALIB_LOG2_STEP 2
enum meshaccel_layout {
	MESHACCEL_LAYOUT_SAME_CPU = 0, /* writer and reader take turns on one CPU */
	MESHACCEL_LAYOUT_TWO_CPUS = 1, /* the reader copies out on another CPU while the writer sends */
	MESHACCEL_LAYOUTS = 2,
};

/* Where the hand-off masks came from (shown by `datapath status`). */
enum meshaccel_threshold_source {
	MESHACCEL_THRESH_DEFAULTS = 0,
	MESHACCEL_THRESH_FLAGS = 1,      /* --bulk-small-max / --bulk-large-min given */
	MESHACCEL_THRESH_CALIBRATED = 2, /* measured on this machine at attach */
};

/* One calibration measurement: one-way throughput of plain loopback TCP and of sk_msg
 * redirection for one write size on one layout, in KB/s (0: not measured). */
struct meshaccel_calib_point {
	__u32 tcp_kBps;
	__u32 redirect_kBps;
};

struct meshaccel_config {
	__u32 mode;            /* enum meshaccel_mode */
	/* A direction whose last bulk_streak sends were all of sizes loopback TCP carries better
	 * (tcp_idle_mask / tcp_busy_mask), while its peer sent nothing (a one-way run), is handed to
	 * TCP for good. 0 disables the hand-off. */
	__u32 bulk_streak;
	/* The thresholds the masks were derived from when they came from defaults or flags (sizes
	 * below bulk_small_max, and from bulk_large_min with a busy reader); 0 when calibrated. Shown
	 * by status only: the programs read the masks. */
	__u32 bulk_small_max;
	__u32 bulk_large_min;
	/* A socket handed to TCP (TCP_ONLY) leaves the sockhash, and so the sk_msg send path, once
	 * that cannot lose or reorder bytes (see sockops.bpf.c:maybe_leave_sockhash()) and at least
	 * this long after its hand-off. MESHACCEL_LEAVE_NEVER keeps such sockets in the sockhash. */
	__u32 leave_delay_ms;
	/* Bit b set: a send of 2^b to 2^(b+1)-1 bytes is carried better by loopback TCP than by
	 * redirection when the reader last read on the writer's CPU (the two take turns on it) /
	 * on another CPU (it copies out while the writer sends). Bit 31 covers everything from
	 * 2 GiB. The reader's CPU comes from reader_cpu.bpf.c; see sk_msg.bpf.c for the decision. */
	__u32 tcp_same_cpu_mask;
	__u32 tcp_other_cpu_mask;
	__u32 threshold_source; /* enum meshaccel_threshold_source */
	/* A run whose verdict depends on the layout (its sizes suit TCP on one layout only) hands
	 * off once its windows have read that layout for this long without a break: a hand-off
	 * cannot be taken back, and an unpinned reader may visit the writer's CPU for a moment. */
	__u32 layout_hold_ms;
	__u32 pad;
	__u64 calibrated_at;    /* unix seconds of the calibration, 0 when not calibrated */
	struct meshaccel_calib_point calib[MESHACCEL_LAYOUTS][MESHACCEL_CALIB_SIZES];
};

#define MESHACCEL_LEAVE_NEVER 0xffffffffu

/* Per-socket redirection state, keyed like the sockhash. Written by this socket's programs
 * under its lock, and by the peer's (flags only, atomically). */
struct meshaccel_flow {
	__u32 streak;          /* sends in the current one-way window (see sk_msg.bpf.c) */
	__u32 flags;           /* MESHACCEL_FLOW_* */
	__u64 handoff_ns;      /* bpf_ktime_get_ns() when the socket went TCP-only, 0 before */
	/* Kernel address of the socket, recorded at insertion so the peer's programs can read its
	 * psock (meshaccel_psock.h); only ever dereferenced through bpf_probe_read_kernel. */
	__u64 sk;
	__u32 cb_flags;        /* sock_ops callback flags this program turned on (and may turn off) */
	__u32 sends;           /* messages this socket sent through sk_msg */
	__u32 peer_sends_seen; /* the peer's `sends` at the last one-way check */
	/* 1 + the CPU this socket's reader last received data on (reader_cpu.bpf.c); 0 while it
	 * has not read since insertion. */
	__u32 read_cpu;
	/* Since when the run's windows have read the layout in `layout` without a break (see
	 * struct meshaccel_config.layout_hold_ms); 0 when no reading is held. */
	__u64 layout_since_ns;
	__u8 layout;           /* 1 + enum meshaccel_layout of that reading; 0: none */
	__u8 win_need_same;    /* this window holds a send TCP carries better only on the same CPU */
	__u8 win_need_other;   /* ... only with the reader on another CPU */
	__u8 pad[5];
};

/* Socket-local storage of an accelerated socket (created by sockops at insertion): its key, so
 * the reader-CPU program need not rebuild it, and the CPU it last recorded, so it touches the
 * flow state only when that changes. A socket without it is not ours and is left at once. */
struct meshaccel_reader {
	struct meshaccel_sock_key key;
	__u32 cpu;             /* 1 + the CPU last written to the flow's read_cpu; 0: none yet */
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
	MESHACCEL_CTR_WINDOWS_SAME_CPU,  /* one-way windows judged with the reader on the writer's CPU */
	MESHACCEL_CTR_WINDOWS_OTHER_CPU, /* ... with the reader on another CPU */
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
#define MESHACCEL_MAP_READERS "ma_readers"
#define MESHACCEL_PIN_SOCKOPS "prog_sockops"
#define MESHACCEL_PIN_SK_MSG "prog_sk_msg"
#define MESHACCEL_PIN_LINK "link_sockops"
#define MESHACCEL_PIN_READER_CPU "prog_reader_cpu"
#define MESHACCEL_PIN_READER_LINK "link_reader_cpu"

#endif /* MESHACCEL_ABI_H */
