/* Grafting: the classifier tail-calls through a program array pinned in
 * tc's global namespace (PIN_GLOBAL_NS), so `exec bpf graft` can swap what
 * runs at key 0 while the classifier stays attached. Verdicts: 7 when the
 * slot is empty, 2 from the tail-call section 1/0, 5 from section "alt".
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "bpf_elf_legacy.h"

struct bpf_elf_map __section("maps") jmp_graft = {
	.type = BPF_MAP_TYPE_PROG_ARRAY, .size_key = 4, .size_value = 4,
	.max_elem = 4, .id = 1, .pinning = PIN_GLOBAL_NS,
};

__section("classifier") int entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jmp_graft, 0);
	return 7;
}

__section("1/0") int first(struct __sk_buff *skb)
{
	return 2;
}

__section("alt") int alternative(struct __sk_buff *skb)
{
	return 5;
}

char __license[] __section("license") = "GPL";
