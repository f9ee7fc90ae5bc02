// SPDX-License-Identifier: GPL-2.0
// meshaccel redirect, bpf mode: a tc ingress program that steers TCP flows to the proxy's
// listening socket with bpf_sk_assign (Cilium's "bpf-tproxy"), instead of nftables' tproxy.
//
// Attached on ingress of
//  - the workload's interfaces (inbound): TCP to a captured, non-excluded port from a
//    non-excluded source goes to the inbound proxy listener;
//  - lo (outbound): packets the nft `output` chain marked with tproxy_mark and rerouted
//    through lo go to the outbound proxy listener.
// The destination is never rewritten: the accepted socket's local address is the original
// destination. skb->mark is set to tproxy_mark so the fwmark rule's `local default dev lo`
// table makes the stack deliver a packet for a foreign address locally.
// Configuration comes from maps the agent fills (pinned per namespace under its bpffs).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define LOOPBACK_IFINDEX 1 /* lo is ifindex 1 in every network namespace */

struct rd_config {
  __u32 tproxy_mark;
  __u16 inbound_proxy_port;  /* host byte order */
  __u16 outbound_proxy_port; /* host byte order */
  __u32 flags;
  __u32 pad;
};
#define RD_F_INBOUND_PORTS_LISTED 1u /* only ports in ma_rd_in_ports are captured inbound */
#define RD_F_INBOUND_ENABLED 2u
#define RD_F_OUTBOUND_ENABLED 4u
#define RD_F_IPV6 8u /* capture IPv6 too */

/* Entries of each port and CIDR map; BPF_REDIRECT_MAP_ENTRIES in src/datapath/redirect/config.ts
 * refuses a config that would not fit, before anything is installed. */
#define RD_MAP_ENTRIES 1024

enum rd_stat {
  RD_IN_CAPTURED = 0,
  RD_IN_ESTABLISHED,
  RD_IN_EXCLUDED,
  RD_OUT_CAPTURED,
  RD_OUT_ESTABLISHED,
  RD_NO_LISTENER,
  RD_ASSIGN_FAILED,
  RD_STAT_MAX,
};

struct lpm_v4 {
  __u32 prefixlen;
  __u32 addr;
};
struct lpm_v6 {
  __u32 prefixlen;
  __u8 addr[16];
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct rd_config);
} ma_rd_config SEC(".maps");

/* Per CPU, so counting a packet never bounces a cache line between CPUs; userspace sums. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, RD_STAT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} ma_rd_stats SEC(".maps");

/* Ports in host byte order -> 1. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, RD_MAP_ENTRIES);
  __type(key, __u16);
  __type(value, __u8);
} ma_rd_in_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, RD_MAP_ENTRIES);
  __type(key, __u16);
  __type(value, __u8);
} ma_rd_in_xports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, RD_MAP_ENTRIES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm_v4);
  __type(value, __u8);
} ma_rd_in_xv4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, RD_MAP_ENTRIES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm_v6);
  __type(value, __u8);
} ma_rd_in_xv6 SEC(".maps");

static __always_inline void count(__u32 stat) {
  __u64 *v = bpf_map_lookup_elem(&ma_rd_stats, &stat);
  if (v) *v += 1; /* this CPU's slot; the program does not migrate mid-run */
}

/* Assigns the flow's own socket if one exists (later packets of a captured flow), else the
 * proxy listener found by the same tuple with the destination port replaced. */
/* Hands the packet to `sk` (consuming the reference) and marks it for the fwmark route. */
static __always_inline int assign_to(struct __sk_buff *skb, struct bpf_sock *sk, const struct rd_config *cfg, __u32 counter) {
  long err = bpf_sk_assign(skb, sk, 0);
  bpf_sk_release(sk);
  if (err) {
    count(RD_ASSIGN_FAILED);
    return TC_ACT_OK;
  }
  skb->mark = cfg->tproxy_mark;
  count(counter);
  return TC_ACT_OK;
}

static __always_inline int steer(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple_len,
                                 __u16 proxy_port, const struct rd_config *cfg, int outbound, int syn) {
  /* Outbound packets after the SYN arrive on lo with the local route the reroute gave them,
   * so the stack's own lookup finds the proxy's accepted socket: nothing to do. */
  if (outbound && !syn) return TC_ACT_OK;
  struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, tuple, tuple_len, BPF_F_CURRENT_NETNS, 0);
  if (sk) {
    /* A SYN that meets a TIME_WAIT socket starts a new flow: the stack would look for a
     * listener on the original port and bypass the proxy, so steer it like any new flow. */
    if (sk->state != BPF_TCP_LISTEN && !(syn && sk->state == BPF_TCP_TIME_WAIT))
      return assign_to(skb, sk, cfg, outbound ? RD_OUT_ESTABLISHED : RD_IN_ESTABLISHED);
    bpf_sk_release(sk); /* the workload's own listener: the proxy takes the flow instead */
  }
  /* Only a connection request starts a captured flow; a stray segment of a flow no local
   * socket owns (e.g. a routed flow) is left to the normal path rather than reset. */
  if (!syn) return TC_ACT_OK;
  if (tuple_len == sizeof(tuple->ipv4)) tuple->ipv4.dport = bpf_htons(proxy_port);
  else tuple->ipv6.dport = bpf_htons(proxy_port);
  sk = bpf_skc_lookup_tcp(skb, tuple, tuple_len, BPF_F_CURRENT_NETNS, 0);
  if (!sk) {
    count(RD_NO_LISTENER); /* no proxy listening: leave the packet to the normal path */
    return TC_ACT_OK;
  }
  if (sk->state != BPF_TCP_LISTEN) {
    bpf_sk_release(sk);
    count(RD_NO_LISTENER);
    return TC_ACT_OK;
  }
  return assign_to(skb, sk, cfg, outbound ? RD_OUT_CAPTURED : RD_IN_CAPTURED);
}

static __always_inline int inbound_excluded_port(__u16 dport, const struct rd_config *cfg) {
  if (dport == cfg->inbound_proxy_port || dport == cfg->outbound_proxy_port) return 1;
  if (bpf_map_lookup_elem(&ma_rd_in_xports, &dport)) return 1;
  if ((cfg->flags & RD_F_INBOUND_PORTS_LISTED) && !bpf_map_lookup_elem(&ma_rd_in_ports, &dport)) return 1;
  return 0;
}

SEC("tc")
int meshaccel_tproxy(struct __sk_buff *skb) {
  __u32 zero = 0;
  const struct rd_config *cfg = bpf_map_lookup_elem(&ma_rd_config, &zero);
  if (!cfg) return TC_ACT_OK;
  int outbound = skb->ifindex == LOOPBACK_IFINDEX;
  if (outbound) {
    if (!(cfg->flags & RD_F_OUTBOUND_ENABLED) || skb->mark != cfg->tproxy_mark) return TC_ACT_OK;
  } else if (!(cfg->flags & RD_F_INBOUND_ENABLED)) {
    return TC_ACT_OK;
  }

  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return TC_ACT_OK;
  struct bpf_sock_tuple tuple = {};

  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP || ip->ihl < 5) return TC_ACT_OK;
    struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
    if ((void *)(tcp + 1) > data_end) return TC_ACT_OK;
    __u16 dport = bpf_ntohs(tcp->dest);
    if (!outbound) {
      struct lpm_v4 key = {.prefixlen = 32, .addr = ip->saddr};
      if (inbound_excluded_port(dport, cfg) || bpf_map_lookup_elem(&ma_rd_in_xv4, &key)) {
        count(RD_IN_EXCLUDED);
        return TC_ACT_OK;
      }
    }
    tuple.ipv4.saddr = ip->saddr;
    tuple.ipv4.daddr = ip->daddr;
    tuple.ipv4.sport = tcp->source;
    tuple.ipv4.dport = tcp->dest;
    return steer(skb, &tuple, sizeof(tuple.ipv4),
                 outbound ? cfg->outbound_proxy_port : cfg->inbound_proxy_port, cfg, outbound,
                 tcp->syn && !tcp->ack);
  }
  if (eth->h_proto == bpf_htons(ETH_P_IPV6) && (cfg->flags & RD_F_IPV6)) {
    struct ipv6hdr *ip6 = (void *)(eth + 1);
    /* Extension headers are not walked: such packets take the normal path. */
    if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP) return TC_ACT_OK;
    struct tcphdr *tcp = (void *)(ip6 + 1);
    if ((void *)(tcp + 1) > data_end) return TC_ACT_OK;
    __u16 dport = bpf_ntohs(tcp->dest);
    if (!outbound) {
      struct lpm_v6 key = {.prefixlen = 128};
      __builtin_memcpy(key.addr, &ip6->saddr, 16);
      if (inbound_excluded_port(dport, cfg) || bpf_map_lookup_elem(&ma_rd_in_xv6, &key)) {
        count(RD_IN_EXCLUDED);
        return TC_ACT_OK;
      }
    }
    __builtin_memcpy(tuple.ipv6.saddr, &ip6->saddr, 16);
    __builtin_memcpy(tuple.ipv6.daddr, &ip6->daddr, 16);
    tuple.ipv6.sport = tcp->source;
    tuple.ipv6.dport = tcp->dest;
    return steer(skb, &tuple, sizeof(tuple.ipv6),
                 outbound ? cfg->outbound_proxy_port : cfg->inbound_proxy_port, cfg, outbound,
                 tcp->syn && !tcp->ack);
  }
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
