/* Common prologue for every meshaccel BPF program (the TPROXY one may include it too):
 * kernel UAPI types, libbpf's helper declarations, byte-order helpers, the license macro and
 * the few libc constants a -target bpf build does not get from system headers. */
#ifndef MESHACCEL_COMPAT_H
#define MESHACCEL_COMPAT_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* GPL-compatible so every helper is usable; the kernel does not recognise Apache-2.0. */
#define MESHACCEL_LICENSE char LICENSE[] SEC("license") = "Dual BSD/GPL"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* Forces a single full-width load of a context field. The verifier rejects narrower loads of
 * some sock_ops/sk_msg fields (remote_port), and clang would otherwise emit a 16-bit load. */
#ifndef READ_ONCE
#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))
#endif

#endif /* MESHACCEL_COMPAT_H */
