/* The BTF twin of verdict_legacy.c: the same classifier with BTF-defined
 * maps in ".maps". stats is pinned by name (LIBBPF_PIN_BY_NAME, tc's global
 * namespace), so it is the same pinned map as the legacy object's and
 * `filter replace` between the two keeps counting.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Key: the destination port as on the wire (be16); value: non-zero blocks. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u16);
	__type(value, __u32);
	__uint(max_entries, 64);
} blocked_ports SEC(".maps");

/* [0] UDP packets passed, [1] UDP packets dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

SEC("classifier") int verdict(struct __sk_buff *skb)
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

char __license[] SEC("license") = "GPL";
