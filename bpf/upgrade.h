/* One classifier in several builds, for `tcbpf filter upgrade`: it counts
 * packets and bytes per IP protocol (255: not IPv4) in the pinned hash
 * `counters`. Each build defines VALUE (the value struct), COUNT(v, len)
 * (what a packet adds), MAX_ENTRIES and, optionally, EXTRA_MAPS/EXTRA(len).
 * New keys go in with BPF_NOEXIST, so a key the loader (or the upgrade's
 * reconciliation) inserts at the same time is never overwritten.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, MAP_TYPE);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, MAX_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

EXTRA_MAPS

SEC("classifier") int upg_cls(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 proto = 255, len = skb->len;

	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) <= data_end)
			proto = ip->protocol;
	}
	for (int i = 0; i < 2; i++) {
		struct counter *c = bpf_map_lookup_elem(&counters, &proto);
		if (c) {
			COUNT(c, len);
			break;
		}
		struct counter init = {};
		if (bpf_map_update_elem(&counters, &proto, &init, BPF_NOEXIST) && i)
			break;
	}
	EXTRA(len);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
