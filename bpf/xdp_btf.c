/* The BTF twin of xdp_legacy.c: the same XDP verdict with BTF-defined maps
 * in ".maps" (nothing pinned). A second program, xdp_pass_all, passes
 * everything and counts nothing: the tests swap it in behind a pinned XDP
 * bpf_link (`link set … pin PATH` again) to see the atomic update.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Key: the destination port as on the wire (be16); value: non-zero blocks. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u16);
	__type(value, __u32);
	__uint(max_entries, 64);
} xdp_blocked SEC(".maps");

/* [0] UDP packets passed, [1] UDP packets dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} xdp_stats SEC(".maps");

SEC("xdp") int xdp_verdict(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return XDP_PASS;

	__u16 port = udp->dest;
	__u32 *blocked = bpf_map_lookup_elem(&xdp_blocked, &port);
	__u32 key = blocked && *blocked ? 1 : 0;
	__u64 *count = bpf_map_lookup_elem(&xdp_stats, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return key ? XDP_DROP : XDP_PASS;
}

SEC("xdp/pass") int xdp_pass_all(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char __license[] SEC("license") = "GPL";
