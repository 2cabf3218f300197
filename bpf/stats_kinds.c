/* Fixture of the exporter and `map watch` tests: the key and value shapes
 * their metric names and labels come from. For every IPv4 packet:
 *   flows[{proto, dport}]  packets and bytes (a struct key; dport 0 unless
 *                          UDP or TCP)
 *   verdicts[VERDICT_PASS] one more (an enum key, a scalar u64 value)
 *   cpu_packets[0]         one more on this CPU (a per-CPU array)
 * Passes every packet.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct flow_key {
	__u32 proto;
	__u32 port;
};

struct flow_counter {
	__u64 packets;
	__u64 bytes;
};

enum verdict {
	VERDICT_PASS = 0,
	VERDICT_DROP = 1,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct flow_key);
	__type(value, struct flow_counter);
	__uint(max_entries, 1024);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, enum verdict);
	__type(value, __u64);
	__uint(max_entries, 4);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} cpu_packets SEC(".maps");

static __always_inline void add_flow(struct flow_key *k, __u64 len)
{
	struct flow_counter *c = bpf_map_lookup_elem(&flows, k);
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, len);
		return;
	}
	struct flow_counter init = { .packets = 1, .bytes = len };
	if (bpf_map_update_elem(&flows, k, &init, BPF_NOEXIST)) {
		c = bpf_map_lookup_elem(&flows, k);
		if (c) {
			__sync_fetch_and_add(&c->packets, 1);
			__sync_fetch_and_add(&c->bytes, len);
		}
	}
}

static __always_inline void add_verdict(enum verdict v)
{
	__u64 one = 1;
	__u64 *n = bpf_map_lookup_elem(&verdicts, &v);
	if (n)
		__sync_fetch_and_add(n, 1);
	else if (bpf_map_update_elem(&verdicts, &v, &one, BPF_NOEXIST)) {
		n = bpf_map_lookup_elem(&verdicts, &v);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
}

SEC("classifier")
int count_kinds(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct flow_key k = {};
	__u32 zero = 0;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	k.proto = ip->protocol;
	if (ip->ihl == 5 && (ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_TCP)) {
		struct udphdr *udp = (void *)(ip + 1);
		if ((void *)(udp + 1) <= data_end)
			k.port = bpf_ntohs(udp->dest);
	}
	add_flow(&k, skb->len);
	add_verdict(VERDICT_PASS);
	__u64 *c = bpf_map_lookup_elem(&cpu_packets, &zero);
	if (c)
		*c += 1;
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
