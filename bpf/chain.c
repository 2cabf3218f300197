/* Several programs in one section, as libbpf-style objects and the kernel's
 * own tcx tests have them (SEC("tc") holding tc1 … tc5 and drop_udp): pick
 * one with `program NAME`. They share the maps of the object.
 *
 * On each IPv4 UDP packet, program tcN counts hits[N] and appends its
 * number to the packet's mark (mark = mark * 10 + N), then stores the mark
 * in order[0]: after a packet went through tc1, tc3 and tc2 in that order,
 * order[0] is 132. tc1, tc2, tc3 and tc5 return TCX_NEXT (TC_ACT_UNSPEC: go
 * on to the next program or filter); tc4 returns TCX_PASS, so nothing after
 * it runs. drop_udp counts hits[9] and drops the packet. Other packets are
 * left alone (TCX_NEXT).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TCX_NEXT -1
#define TCX_PASS 0

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 10);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} order SEC(".maps");

static __always_inline int is_udp4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return 0;
	return eth->h_proto == bpf_htons(ETH_P_IP) && ip->protocol == IPPROTO_UDP;
}

static __always_inline int step(struct __sk_buff *skb, __u32 n, int verdict)
{
	__u32 zero = 0;
	__u64 *v;

	if (!is_udp4(skb))
		return TCX_NEXT;
	v = bpf_map_lookup_elem(&hits, &n);
	if (v)
		__sync_fetch_and_add(v, 1);
	skb->mark = skb->mark * 10 + n;
	v = bpf_map_lookup_elem(&order, &zero);
	if (v)
		*v = skb->mark;
	return verdict;
}

SEC("tc")
int tc1(struct __sk_buff *skb) { return step(skb, 1, TCX_NEXT); }

SEC("tc")
int tc2(struct __sk_buff *skb) { return step(skb, 2, TCX_NEXT); }

SEC("tc")
int tc3(struct __sk_buff *skb) { return step(skb, 3, TCX_NEXT); }

SEC("tc")
int tc4(struct __sk_buff *skb) { return step(skb, 4, TCX_PASS); }

SEC("tc")
int tc5(struct __sk_buff *skb) { return step(skb, 5, TCX_NEXT); }

SEC("tc")
int drop_udp(struct __sk_buff *skb)
{
	if (!is_udp4(skb))
		return TCX_NEXT;
	step(skb, 9, TC_ACT_SHOT);
	return TC_ACT_SHOT;
}

char __license[] SEC("license") = "GPL";
