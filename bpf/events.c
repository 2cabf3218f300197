/* Events for `tcbpf map events`: for every IPv4 UDP datagram to port
 * 7777 the classifier sends one `struct event` to the ring buffer `rb`
 * and one to the perf event array `pa`. `pa` has no max_entries (libbpf
 * sizes it to the possible CPUs) and `rb` asks for 3 pages (libbpf rounds
 * it up to 4). `.bss` counts the datagrams and the ring buffer records
 * that did not fit.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct event {
	__u32 seq;
	__u16 sport;
	__u16 dport;
	__u32 len;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 3 * 4096);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pa SEC(".maps");

__u64 seen;
__u64 rb_full;
/* Puts `struct event` in the object's BTF (locals are not described), so
 * readers can type the events by name. */
struct event *event_type __attribute__((unused));

SEC("classifier") int events_cls(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct event ev = {};

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5 || udp->dest != bpf_htons(7777))
		return TC_ACT_OK;
	ev.seq = __sync_fetch_and_add(&seen, 1);
	ev.sport = bpf_ntohs(udp->source);
	ev.dport = bpf_ntohs(udp->dest);
	ev.len = skb->len;
	ev.proto = ip->protocol;
	if (bpf_ringbuf_output(&rb, &ev, sizeof(ev), 0))
		__sync_fetch_and_add(&rb_full, 1);
	bpf_perf_event_output(skb, &pa, BPF_F_CURRENT_CPU, &ev, sizeof(ev));
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
