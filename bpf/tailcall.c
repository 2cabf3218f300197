/* Legacy tail calls: sections named <id>/<key> go into the program array
 * whose map id is <id>. The first payload byte (after the Ethernet header)
 * picks the path: 0 runs the chain classifier -> 1/0 -> 1/1 (verdict 2);
 * 1 enters 1/2, which jumps into its own slot until it has run 4 times
 * (verdict 3). trace[n] counts the runs of each stage.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "bpf_elf_legacy.h"

#define JMP_ID 1

struct bpf_elf_map __section("maps") jmp_table = {
	.type = BPF_MAP_TYPE_PROG_ARRAY, .size_key = 4, .size_value = 4,
	.max_elem = 8, .id = JMP_ID,
};
struct bpf_elf_map __section("maps") trace = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8,
	.max_elem = 8, .id = 2,
};

static __always_inline __u64 bump(__u32 stage)
{
	__u64 *v = bpf_map_lookup_elem(&trace, &stage);
	if (!v)
		return 0;
	return __sync_add_and_fetch(v, 1);
}

__section("classifier") int entry(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *sel = (__u8 *)data + 14;

	bump(0);
	if ((void *)(sel + 1) > data_end)
		return 1;
	if (*sel == 0)
		bpf_tail_call(skb, &jmp_table, 0);
	else
		bpf_tail_call(skb, &jmp_table, 2);
	/* Reached only when the slot is empty. */
	return 7;
}

__section("1/0") int stage_a(struct __sk_buff *skb)
{
	bump(1);
	bpf_tail_call(skb, &jmp_table, 1);
	return 8;
}

__section("1/1") int stage_b(struct __sk_buff *skb)
{
	bump(2);
	return TC_ACT_SHOT;
}

__section("1/2") int loop(struct __sk_buff *skb)
{
	if (bump(3) % 4 != 0)
		bpf_tail_call(skb, &jmp_table, 2);
	return 3;
}

char __license[] __section("license") = "GPL";
