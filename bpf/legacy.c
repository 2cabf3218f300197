/* Legacy (iproute2 struct bpf_elf_map) maps with ids and every pinning
 * kind. The classifier counts packets per IP protocol in proto_count, and
 * one per packet in each pinned array; TCP packets are dropped (2), the
 * rest pass (0). The action counts into obj_pinned[1] and returns 3.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpf_elf_legacy.h"

#define PIN_CUSTOM 42

struct bpf_elf_map __section("maps") proto_count = {
	.type = BPF_MAP_TYPE_HASH, .size_key = 4, .size_value = 8,
	.max_elem = 256, .id = 1, .pinning = PIN_NONE,
};
struct bpf_elf_map __section("maps") obj_pinned = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 4, .id = 2, .pinning = PIN_OBJECT_NS,
};
struct bpf_elf_map __section("maps") glob_pinned = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 4, .id = 3, .pinning = PIN_GLOBAL_NS,
};
struct bpf_elf_map __section("maps") custom_pinned = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 4, .id = 4, .pinning = PIN_CUSTOM,
};
/* No id: gets the lowest id the object leaves free (0). */
struct bpf_elf_map __section("maps") no_id = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 1,
};

/* iproute2's BPF_ANNOTATE_KV_PAIR: BTF key and value types for a legacy map. */
struct ____btf_map_proto_count {
	__u32 key;
	__u64 value;
};
struct ____btf_map_proto_count __attribute__((section(".maps.proto_count"), used))
	____btf_map_proto_count = {};

static __always_inline void bump(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

__section("classifier") int cls_main(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 proto = 255;

	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) <= data_end)
			proto = ip->protocol;
	}
	__u64 *c = bpf_map_lookup_elem(&proto_count, &proto);
	if (c) {
		__sync_fetch_and_add(c, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&proto_count, &proto, &one, BPF_ANY);
	}
	bump(&obj_pinned, 0);
	bump(&glob_pinned, 0);
	bump(&custom_pinned, 0);
	bump(&no_id, 0);
	return proto == 6 ? TC_ACT_SHOT : TC_ACT_OK;
}

__section("action") int act_main(struct __sk_buff *skb)
{
	bump(&obj_pinned, 1);
	return TC_ACT_RECLASSIFY;
}

char __license[] __section("license") = "GPL";
