/* Tail-call sections in every form iproute2 reads with sscanf("%i/%i"):
 * hex (its own bpf_cyclic.c uses 0xabccba/0), octal, a sign, upper-case
 * 0X. The first payload byte picks the slot; each target returns its own
 * verdict, the entry 7 when the slot is empty. Two sections look like tail
 * calls but are not used: 7/0 and 0x/1 (map ids 7 and 0: glibc reads "0x"
 * without digits as 0), which no program array has, and 08/1, which sscanf
 * does not read as two numbers (8 is no octal digit): the loader warns
 * about each.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "bpf_elf_legacy.h"

#define HEX_ID 0xabccba
#define OCT_ID 10

struct bpf_elf_map __section("maps") jmp_hex = {
	.type = BPF_MAP_TYPE_PROG_ARRAY, .size_key = 4, .size_value = 4,
	.max_elem = 4, .id = HEX_ID,
};
struct bpf_elf_map __section("maps") jmp_oct = {
	.type = BPF_MAP_TYPE_PROG_ARRAY, .size_key = 4, .size_value = 4,
	.max_elem = 4, .id = OCT_ID,
};

__section("classifier") int entry(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *sel = (__u8 *)data + 14;

	if ((void *)(sel + 1) > data_end)
		return 1;
	switch (*sel) {
	case 0:
		bpf_tail_call(skb, &jmp_hex, 0);
		break;
	case 1:
		bpf_tail_call(skb, &jmp_oct, 1);
		break;
	case 2:
		bpf_tail_call(skb, &jmp_hex, 2);
		break;
	}
	return 7;
}

/* Hex map id, decimal key. */
__section("0xabccba/0") int hex_slot(struct __sk_buff *skb)
{
	return 2;
}

/* Octal map id (012 is 10), hex key. */
__section("012/0x1") int oct_slot(struct __sk_buff *skb)
{
	return 3;
}

/* A sign and an upper-case 0X, octal key (02 is 2). */
__section("+0XABCCBA/02") int signed_slot(struct __sk_buff *skb)
{
	return 4;
}

/* No program array has id 7. */
__section("7/0") int orphan(struct __sk_buff *skb)
{
	return 5;
}

/* "0x" without digits is 0 to glibc's sscanf: map id 0, not in the object. */
__section("0x/1") int not_a_slot(struct __sk_buff *skb)
{
	return 6;
}

/* Not a slot: sscanf reads "0", then "8" is not the '/'. */
__section("08/1") int octal_typo(struct __sk_buff *skb)
{
	return 9;
}

char __license[] __section("license") = "GPL";
