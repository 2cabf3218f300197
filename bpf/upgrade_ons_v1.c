/* upgrade, a map pinned in the object's namespace (tc/<object sha1>/):
 * v1 and v2 differ in their code only (v1 counts into slot 0), so
 * an upgrade between them reuses ons_count and pins it under the new
 * object's namespace; the old object's pin must not stay behind. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "bpf_elf_legacy.h"

struct bpf_elf_map __section("maps") ons_count = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 2, .id = 1, .pinning = PIN_OBJECT_NS,
};

__section("classifier") int ons_cls(struct __sk_buff *skb)
{
	__u32 slot = 0;
	__u64 *n = bpf_map_lookup_elem(&ons_count, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
	return TC_ACT_OK;
}

char _license[] __section("license") = "GPL";
