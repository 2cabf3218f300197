/* A kfunc declared with a prototype the kernel's does not match (an extra
 * parameter): the loader must refuse it naming the kfunc, as libbpf does,
 * rather than let the verifier see a call it cannot check.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct nf_conn {
	__u32 unused;
};

extern void bpf_ct_release(struct nf_conn *ct, int extra) __ksym;

SEC("classifier") int proto_cls(struct __sk_buff *skb)
{
	if (skb->len == 12345)
		bpf_ct_release((struct nf_conn *)0, 1);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
