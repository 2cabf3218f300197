/* BTF-defined maps: a hash counting packets per IP protocol (key and value
 * by type), an array by size, a per-CPU array, and an LRU hash pinned by
 * name (LIBBPF_PIN_BY_NAME: tc's globals directory). TCP is dropped (2).
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, 256);
} by_proto SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 8);
	__uint(max_entries, 2);
} sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} per_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 128);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} btf_pinned SEC(".maps");

SEC("classifier") int btf_cls(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 proto = 255, zero = 0, one = 1;

	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) <= data_end)
			proto = ip->protocol;
	}
	struct counter *c = bpf_map_lookup_elem(&by_proto, &proto);
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, skb->len);
	} else {
		struct counter init = { .packets = 1, .bytes = skb->len };
		bpf_map_update_elem(&by_proto, &proto, &init, BPF_ANY);
	}
	__u64 *s = bpf_map_lookup_elem(&sized, &one);
	if (s)
		__sync_fetch_and_add(s, 1);
	__u64 *p = bpf_map_lookup_elem(&per_cpu, &zero);
	if (p)
		*p += 1;
	__u64 *g = bpf_map_lookup_elem(&btf_pinned, &proto);
	if (g) {
		__sync_fetch_and_add(g, 1);
	} else {
		__u64 first = 1;
		bpf_map_update_elem(&btf_pinned, &proto, &first, BPF_ANY);
	}
	return proto == 6 ? TC_ACT_SHOT : TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
