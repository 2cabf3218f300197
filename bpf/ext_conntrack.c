/* Conntrack kfuncs as tc programs call them: bpf_skb_ct_lookup for the
 * IPv4 UDP datagram's tuple (its struct bpf_ct_opts checked against the
 * kernel's prototype by the loader), bpf_ct_release when it finds an
 * entry. The namespace tracks no connections, so every lookup fails with
 * -ENOENT in opts.error: out[0] counts lookups that found an entry,
 * out[1] those that failed with -ENOENT, out[2] other failures.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ENOENT 2

/* Declared, not just forward-declared: a FWD is not compatible with the
 * kernel's STRUCT, for libbpf's prototype check as for tcbpf's. */
struct nf_conn {
	__u32 unused;
};

struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u16 ct_zone_id;
	__u8 ct_zone_dir;
	__u8 reserved[3];
};

extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb_ctx,
					 struct bpf_sock_tuple *bpf_tuple, __u32 tuple__sz,
					 struct bpf_ct_opts *opts, __u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

static void bump(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&out, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("classifier") int conntrack_cls(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct bpf_sock_tuple tuple = {};
	struct bpf_ct_opts opts = { .netns_id = -1, .l4proto = IPPROTO_UDP };
	struct nf_conn *ct;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_OK;
	tuple.ipv4.saddr = ip->saddr;
	tuple.ipv4.daddr = ip->daddr;
	tuple.ipv4.sport = udp->source;
	tuple.ipv4.dport = udp->dest;
	ct = bpf_skb_ct_lookup(skb, &tuple, sizeof(tuple.ipv4), &opts, sizeof(opts));
	if (ct) {
		bpf_ct_release(ct);
		bump(0);
	} else if (opts.error == -ENOENT) {
		bump(1);
	} else {
		bump(2);
	}
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
