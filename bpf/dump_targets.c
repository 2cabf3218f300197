/* Programs for `tcbpf dump`'s tests, one section each so a tcx chain can
 * be built from them with `program NAME`:
 *   mark_udp     sets the mark of UDP packets to 42, TCX_NEXT (go on)
 *   count_all    counts every packet in `seen`, TCX_NEXT
 *   drop_port    drops UDP datagrams to port 4243 (TC_ACT_SHOT), else
 *                TCX_NEXT
 *   pass_all     TC_ACT_OK for everything
 *   redirect_lo  redirects every packet to ifindex `redirect_to` (.bss,
 *                set by the test), TC_ACT_REDIRECT
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TCX_NEXT -1

static __always_inline struct udphdr *udp4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return 0;
	return udp;
}

SEC("tc")
int mark_udp(struct __sk_buff *skb)
{
	if (udp4(skb))
		skb->mark = 42;
	return TCX_NEXT;
}

__u64 seen;

SEC("tc")
int count_all(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&seen, 1);
	return TCX_NEXT;
}

SEC("tc")
int drop_port(struct __sk_buff *skb)
{
	struct udphdr *udp = udp4(skb);

	if (udp && udp->dest == bpf_htons(4243))
		return TC_ACT_SHOT;
	return TCX_NEXT;
}

SEC("tc")
int pass_all(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

__u32 redirect_to;

SEC("tc")
int redirect_lo(struct __sk_buff *skb)
{
	return bpf_redirect(redirect_to, 0);
}

char __license[] SEC("license") = "GPL";
