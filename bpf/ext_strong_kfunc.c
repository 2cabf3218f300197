/* A strong kfunc the kernel does not have: the load must fail naming it. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

extern int tcbpf_no_such_strong_kfunc(struct __sk_buff *skb) __ksym;

SEC("classifier") int strong_kfunc_cls(struct __sk_buff *skb)
{
	return tcbpf_no_such_strong_kfunc(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
