/* CO-RE relocations inside a subprogram: ip_proto() lives in .text and is
 * linked into both programs, so its relocations must follow it to where it
 * lands in each. Drops UDP as a classifier, TCP as an action.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

static __noinline int ip_proto(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != __builtin_bswap16(0x0800))
		return -1;
	return ip->protocol;
}

SEC("classifier")
int drop_udp(struct __sk_buff *skb)
{
	return ip_proto(skb) == IPPROTO_UDP ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("action")
int drop_tcp(struct __sk_buff *skb)
{
	return ip_proto(skb) == IPPROTO_TCP ? TC_ACT_SHOT : TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
