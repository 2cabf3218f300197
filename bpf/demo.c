/* The built-in example of `tcbpf demo`: a tc classifier that counts packets
 * and bytes per IP protocol (ICMP, TCP, UDP, other) and passes everything.
 * BTF-defined maps; exported to the demo's shell by `export UDS`.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct counter {
	__u64 packets;
	__u64 bytes;
};

/* Key: the IP protocol number (1 ICMP, 6 TCP, 17 UDP; 255 for non-IPv4). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, 256);
} proto_stats SEC(".maps");

SEC("classifier")
int count_proto(struct __sk_buff *skb)
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

	struct counter *c = bpf_map_lookup_elem(&proto_stats, &proto);
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, skb->len);
	} else {
		struct counter init = { .packets = 1, .bytes = skb->len };
		/* Another CPU may create the entry first: then count into it. */
		if (bpf_map_update_elem(&proto_stats, &proto, &init, BPF_NOEXIST)) {
			c = bpf_map_lookup_elem(&proto_stats, &proto);
			if (c) {
				__sync_fetch_and_add(&c->packets, 1);
				__sync_fetch_and_add(&c->bytes, skb->len);
			}
		}
	}
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
