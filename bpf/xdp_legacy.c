/* The XDP verdict fixture, legacy flavour (iproute2 struct bpf_elf_map in
 * SEC("maps"), with ids, nothing pinned): IPv4 UDP packets whose
 * destination port is a key of xdp_blocked are dropped (XDP_DROP), the
 * others pass. xdp_stats counts the IPv4 UDP packets seen: [0] passed,
 * [1] dropped; other traffic passes uncounted, so tests expect exact
 * numbers. Section "xdp", as `tcbpf link set … xdp obj FILE` loads it.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpf_elf_legacy.h"

/* Key: the destination port as on the wire (be16); value: non-zero blocks. */
struct bpf_elf_map __section("maps") xdp_blocked = {
	.type = BPF_MAP_TYPE_HASH, .size_key = 2, .size_value = 4,
	.max_elem = 64, .id = 7, .pinning = PIN_NONE,
};
/* [0] UDP packets passed, [1] UDP packets dropped. */
struct bpf_elf_map __section("maps") xdp_stats = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 2, .id = 3, .pinning = PIN_NONE,
};

__section("xdp") int xdp_verdict(struct xdp_md *ctx)
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

char __license[] __section("license") = "GPL";
