/* A policy swapped whole: the map-in-map pattern of `tcbpf map commit`.
 *
 * `policy` is an array of maps with one slot; the slot holds the inner
 * map in force, a hash of UDP destination port (host order) -> action
 * (non-zero drops). `tcbpf map commit` builds a complete new inner map
 * and publishes it with one update of the slot. The inner map's
 * all-ones key (0xffffffff, never a port) holds the generation number
 * that commit wrote into that map: a packet reads the slot once, so the
 * policy and the generation it sees come from the same map.
 *
 * `policy_stats` counts every UDP packet by (generation seen, port / 1000,
 * dropped), so a test can check each packet's fate against the policy of
 * the generation that classified it. The object starts with an empty
 * generation 0 (`policy_gen0`), whose attributes commit copies.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define GENERATION_KEY 0xffffffffu

struct policy_inner {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 2 << 20);
} policy_gen0 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct policy_inner);
} policy SEC(".maps") = {
	.values = { [0] = &policy_gen0 },
};

struct verdict_key {
	__u32 generation;
	__u16 bucket;	/* destination port / 1000 */
	__u16 dropped;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct verdict_key);
	__type(value, __u64);
	__uint(max_entries, 1 << 16);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_stats SEC(".maps");

SEC("classifier") int policy_gen(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 slot = 0, gen_key = GENERATION_KEY;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_OK;

	__u32 port = bpf_ntohs(udp->dest);
	struct verdict_key vk = { .bucket = port / 1000 };
	/* One read of the slot: everything below uses this one inner map. */
	void *inner = bpf_map_lookup_elem(&policy, &slot);
	if (inner) {
		__u32 *gen = bpf_map_lookup_elem(inner, &gen_key);
		__u32 *action = bpf_map_lookup_elem(inner, &port);
		vk.generation = gen ? *gen : 0;
		vk.dropped = action && *action;
	}
	__u64 zero = 0, *count = bpf_map_lookup_elem(&policy_stats, &vk);
	if (!count) {
		/* Two CPUs may race to insert: one wins, both then add. */
		bpf_map_update_elem(&policy_stats, &vk, &zero, BPF_NOEXIST);
		count = bpf_map_lookup_elem(&policy_stats, &vk);
	}
	if (count)
		__sync_fetch_and_add(count, 1);
	return vk.dropped ? TC_ACT_SHOT : TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
