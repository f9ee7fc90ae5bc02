/* Building the socket key from a sock_ops context (insertion) and from an sk_msg context
 * (peer lookup). Both contexts expose the same fields with the same byte orders:
 *   local_ip4/remote_ip4/local_ip6/remote_ip6: network order
 *   local_port: host order
 *   remote_port: network order, placed in the upper 16 bits of the u32 on little-endian
 *     kernels (the context rewrite loads skc_dport and shifts it left 16).
 * port_from_remote() accepts either placement, and test/datapath checks the ports stored in
 * the map against the sockets' real ports. */
#ifndef MESHACCEL_KEYS_H
#define MESHACCEL_KEYS_H

#include "meshaccel_compat.h"
#include "meshaccel_abi.h"

static __always_inline __u16 port_from_remote(__u32 raw)
{
	__u16 be = (raw & 0xffff0000u) ? (__u16)(raw >> 16) : (__u16)raw;
	return bpf_ntohs(be);
}

static __always_inline int is_loopback4(__u32 ip_be)
{
	return (bpf_ntohl(ip_be) >> 24) == 127;
}

static __always_inline int is_v4mapped(__u32 a0, __u32 a1, __u32 a2)
{
	return a0 == 0 && a1 == 0 && a2 == bpf_htonl(0x0000ffff);
}

static __always_inline int is_loopback6(__u32 a0, __u32 a1, __u32 a2, __u32 a3)
{
	return a0 == 0 && a1 == 0 && a2 == 0 && a3 == bpf_htonl(1);
}

/* Fills *key from the raw fields; returns 1 for a loopback pair we accelerate, else 0.
 * Macro rather than function so each context's fields are read directly (the verifier
 * tracks context pointers only through direct field loads). */
#define MESHACCEL_FILL_KEY(ctx, key, ok)                                                   \
	do {                                                                               \
		__u32 fam_ = READ_ONCE((ctx)->family);                                     \
		__u32 rport_ = READ_ONCE((ctx)->remote_port);                              \
		__builtin_memset((key), 0, sizeof(*(key)));                                \
		(ok) = 0;                                                                  \
		(key)->local_port = (__u16)READ_ONCE((ctx)->local_port);                   \
		(key)->remote_port = port_from_remote(rport_);                             \
		if (fam_ == AF_INET) {                                                     \
			__u32 l_ = READ_ONCE((ctx)->local_ip4);                            \
			__u32 r_ = READ_ONCE((ctx)->remote_ip4);                           \
			if (is_loopback4(l_) && is_loopback4(r_)) {                        \
				(key)->family = AF_INET;                                   \
				(key)->local_ip4 = l_;                                     \
				(key)->remote_ip4 = r_;                                    \
				(ok) = 1;                                                  \
			}                                                                  \
		} else if (fam_ == AF_INET6) {                                             \
			__u32 l0_ = READ_ONCE((ctx)->local_ip6[0]);                        \
			__u32 l1_ = READ_ONCE((ctx)->local_ip6[1]);                        \
			__u32 l2_ = READ_ONCE((ctx)->local_ip6[2]);                        \
			__u32 l3_ = READ_ONCE((ctx)->local_ip6[3]);                        \
			__u32 r0_ = READ_ONCE((ctx)->remote_ip6[0]);                       \
			__u32 r1_ = READ_ONCE((ctx)->remote_ip6[1]);                       \
			__u32 r2_ = READ_ONCE((ctx)->remote_ip6[2]);                       \
			__u32 r3_ = READ_ONCE((ctx)->remote_ip6[3]);                       \
			if (is_v4mapped(l0_, l1_, l2_) && is_v4mapped(r0_, r1_, r2_)) {    \
				if (is_loopback4(l3_) && is_loopback4(r3_)) {              \
					(key)->family = AF_INET;                           \
					(key)->local_ip4 = l3_;                            \
					(key)->remote_ip4 = r3_;                           \
					(ok) = 1;                                          \
				}                                                          \
			} else if (is_loopback6(l0_, l1_, l2_, l3_) &&                     \
				   is_loopback6(r0_, r1_, r2_, r3_)) {                     \
				(key)->family = AF_INET6;                                  \
				(ok) = 1;                                                  \
			}                                                                  \
		}                                                                          \
	} while (0)

/* The key under which the peer socket was inserted: same netns, family, swapped ends. */
static __always_inline void meshaccel_peer_key(const struct meshaccel_sock_key *self,
					       struct meshaccel_sock_key *peer)
{
	peer->netns = self->netns;
	peer->family = self->family;
	peer->local_port = self->remote_port;
	peer->remote_port = self->local_port;
	peer->local_ip4 = self->remote_ip4;
	peer->remote_ip4 = self->local_ip4;
}

#endif /* MESHACCEL_KEYS_H */
