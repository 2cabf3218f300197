/* Subprogram calls: a global function and a static function in .text,
 * and a static function in the program's own section. The verdict is
 * computed from the first payload byte b: (b * 3 + 1) + 10 - 1.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

static __noinline int times_three(int x)
{
	return x * 3;
}

__noinline int add_one(int x)
{
	return times_three(x) + 1;
}

static __noinline __attribute__((section("classifier"))) int same_section(int x)
{
	return x + 10;
}

SEC("classifier") int calls(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *b = (__u8 *)data + 14;

	if ((void *)(b + 1) > data_end)
		return 0;
	return same_section(add_one(*b)) - 1;
}

char __license[] SEC("license") = "GPL";
