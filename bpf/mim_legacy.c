/* Legacy map-in-map: the outer array's inner_id names the inner map's id,
 * and the inner map's inner_idx is the slot it is stored at (3). The
 * classifier counts into inner[0] through the outer map: verdict 0 when
 * the inner map was found, 1 otherwise.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "bpf_elf_legacy.h"

struct bpf_elf_map __section("maps") inner = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 2, .id = 10, .inner_idx = 3,
};
struct bpf_elf_map __section("maps") outer = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS, .size_key = 4, .size_value = 4,
	.max_elem = 4, .id = 11, .inner_id = 10,
};

__section("classifier") int mim(struct __sk_buff *skb)
{
	__u32 slot = 3, zero = 0;
	void *in = bpf_map_lookup_elem(&outer, &slot);
	if (!in)
		return 1;
	__u64 *v = bpf_map_lookup_elem(in, &zero);
	if (!v)
		return 1;
	__sync_fetch_and_add(v, 1);
	return 0;
}

char __license[] __section("license") = "GPL";
