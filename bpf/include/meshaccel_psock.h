/* Read-only views of the kernel's sockmap state (struct sk_psock), used to decide when a
 * handed-off socket can leave the sockhash without losing bytes. Only the fields read are
 * declared; CO-RE relocates their offsets against the running kernel's BTF, and every read
 * goes through bpf_probe_read_kernel, so a stale address yields garbage, never a fault.
 * Addresses are kept as plain integers (in struct meshaccel_flow) for the same reason. */
#ifndef MESHACCEL_PSOCK_H
#define MESHACCEL_PSOCK_H

#include "meshaccel_compat.h"
#include <bpf/bpf_core_read.h>

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

/* The psock of the socket at kernel address sk, 0 when it has none (never in a sockmap, or
 * its psock was released: that happens only once nothing holds a reference, so no send on
 * that socket is in progress through the sockmap path). ~0 when it cannot be read. */
static __always_inline __u64 ma_sock_psock(__u64 sk)
{
	unsigned long ud = 0;

	if (!sk || bpf_core_read(&ud, sizeof(ud), &((struct sock___ma *)sk)->sk_user_data))
		return ~0ull;
	return ud & MA_USER_DATA_PTRMASK;
}

/* References held on a psock: one per sockmap holding the socket, plus one for each send,
 * receive or incoming redirect in progress. -1 when unreadable. */
static __always_inline int ma_psock_refs(__u64 psock)
{
	int refs = 0;

	if (!psock || psock == ~0ull ||
	    bpf_core_read(&refs, sizeof(refs), &((struct sk_psock___ma *)psock)->refcnt.refs.counter))
		return -1;
	return refs;
}

/* 1 when nothing redirected into the socket waits unread (released with the psock). */
static __always_inline int ma_psock_queue_empty(__u64 psock)
{
	void *next = 0;
	struct sk_psock___ma *p = (struct sk_psock___ma *)psock;

	if (!psock || psock == ~0ull || bpf_core_read(&next, sizeof(next), &p->ingress_msg.next))
		return 0;
	return next == (void *)&p->ingress_msg;
}

#endif /* MESHACCEL_PSOCK_H */
