/* A strong .kconfig extern the kernel does not have: the load must fail
 * naming it (as libbpf does), not load with a zero.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

extern int CONFIG_TCBPF_NO_SUCH_STRONG __kconfig;

SEC("classifier") int strong_cls(struct __sk_buff *skb)
{
	return CONFIG_TCBPF_NO_SUCH_STRONG ? TC_ACT_SHOT : TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
