/* One legacy object body for every struct bpf_elf_map size: a hash map
 * counting packets per IP protocol and an array counting all packets.
 * Included by legacy_v20.c, legacy_v24.c, legacy_v28.c after MAP_FIELDS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpf_elf_legacy.h"

struct bpf_elf_map __section("maps") sized_proto = {
	.type = BPF_MAP_TYPE_HASH, .size_key = 4, .size_value = 8,
	.max_elem = 64, .flags = BPF_F_NO_PREALLOC,
#if MAP_FIELDS >= 6
	.id = 7,
#endif
};
struct bpf_elf_map __section("maps") sized_total = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 1,
#if MAP_FIELDS >= 6
	.id = 8,
#endif
};

__section("classifier") int sized_cls(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 proto = 255, zero = 0;

	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) <= data_end)
			proto = ip->protocol;
	}
	__u64 *c = bpf_map_lookup_elem(&sized_proto, &proto);
	if (c) {
		__sync_fetch_and_add(c, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&sized_proto, &proto, &one, BPF_ANY);
	}
	__u64 *t = bpf_map_lookup_elem(&sized_total, &zero);
	if (t)
		__sync_fetch_and_add(t, 1);
	return MAP_FIELDS;
}

char __license[] __section("license") = "GPL";
