/* Global data: .rodata (a constant verdict), .data (a counter starting at
 * 100), .bss (a packet counter) and bpf_printk (its format string lives
 * in .rodata.str1.1). TCP packets get the .rodata verdict, others 0.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u32 tcp_verdict = TC_ACT_SHOT;
__u64 from_hundred = 100;
__u64 packets;
static __u64 bytes;

SEC("classifier") int data_cls(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 proto = 255;

	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) <= data_end)
			proto = ip->protocol;
	}
	__sync_fetch_and_add(&packets, 1);
	__sync_fetch_and_add(&from_hundred, 1);
	bytes += skb->len;
	bpf_printk("tcbpf global_data: proto %u len %u", proto, skb->len);
	return proto == 6 ? tcp_verdict : TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
