/* A program section whose only function is static, as some old tc
 * examples wrote them: tc loads the section from its start all the same.
 * Returns 5.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((section("classifier"), used)) int local_prog(struct __sk_buff *skb)
{
	return 5;
}

char __license[] SEC("license") = "GPL";
