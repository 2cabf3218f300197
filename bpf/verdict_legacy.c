/* The end-to-end verdict fixture, legacy flavour (iproute2 struct
 * bpf_elf_map in SEC("maps"), with ids): IPv4 UDP packets whose
 * destination port is a key of blocked_ports are dropped, the others pass.
 * stats counts the IPv4 UDP packets seen: [0] passed, [1] dropped. Other
 * traffic passes uncounted, so the tests can expect exact numbers.
 * blocked_ports is filled from user space (an importer's shell) and starts
 * empty; stats is pinned in the global namespace so that `filter replace`
 * with another object keeps counting into the same map.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpf_elf_legacy.h"

/* Key: the destination port as on the wire (be16); value: non-zero blocks. */
struct bpf_elf_map __section("maps") blocked_ports = {
	.type = BPF_MAP_TYPE_HASH, .size_key = 2, .size_value = 4,
	.max_elem = 64, .id = 7, .pinning = PIN_NONE,
};
/* [0] UDP packets passed, [1] UDP packets dropped. */
struct bpf_elf_map __section("maps") stats = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 2, .id = 3, .pinning = PIN_GLOBAL_NS,
};

__section("classifier") int verdict(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_OK;

	__u16 port = udp->dest;
	__u32 *blocked = bpf_map_lookup_elem(&blocked_ports, &port);
	__u32 key = blocked && *blocked ? 1 : 0;
	__u64 *count = bpf_map_lookup_elem(&stats, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return key ? TC_ACT_SHOT : TC_ACT_OK;
}

char __license[] __section("license") = "GPL";
