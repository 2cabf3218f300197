/* The array form of the policy-generation pattern (`tcbpf map commit`):
 * an outer ARRAY_OF_MAPS whose slot 0 holds the policy in force, here an
 * ARRAY of 4096 u32 flags indexed by UDP port (ports 0-4094); the last
 * index (4095) is reserved for the generation number the commit writes.
 * The slot starts empty: the first commit takes the inner map's
 * definition from this object's BTF (the `values` type below), as the
 * kernel keeps it with the program. Drops UDP to a flagged port, counts
 * in policy_array_stats by generation seen ([generation] += 1, up to 15).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define POLICY_PORTS 4096
#define GENERATION_INDEX (POLICY_PORTS - 1)

struct policy_array_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, POLICY_PORTS);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct policy_array_inner);
} policy_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 16);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_array_stats SEC(".maps");

SEC("classifier") int policy_array_cls(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 slot = 0, gen_index = GENERATION_INDEX, generation = 0;
	int drop = 0;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_OK;
	__u32 port = bpf_ntohs(udp->dest);
	/* One read of the slot: everything below uses this one inner map. */
	void *inner = bpf_map_lookup_elem(&policy_array, &slot);
	if (inner) {
		__u32 *gen = bpf_map_lookup_elem(inner, &gen_index);
		__u32 *flag = port < GENERATION_INDEX ? bpf_map_lookup_elem(inner, &port) : 0;
		generation = gen ? *gen : 0;
		drop = flag && *flag;
	}
	__u32 bucket = generation & 15;
	__u64 *count = bpf_map_lookup_elem(&policy_array_stats, &bucket);
	if (count)
		__sync_fetch_and_add(count, 1);
	return drop ? TC_ACT_SHOT : TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
