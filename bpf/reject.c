/* A classifier the verifier rejects: it reads the packet without checking
 * data_end. Used to test that the error names the section and shows the
 * tail of the verifier log. The `ok` section next to it loads fine.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("classifier") int unchecked_read(struct __sk_buff *skb)
{
	__u8 *data = (__u8 *)(long)skb->data;
	return data[20];
}

SEC("ok") int fine(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
