/* BTF map-in-map: an array of maps whose `values` initialiser stores
 * inner_a at slot 1 and inner_b at slot 2. The classifier adds 1 to
 * element 0 of the inner map at the slot the first payload byte names;
 * verdict 0 when that slot holds a map, 1 when it is empty.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 4);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [1] = &inner_a, [2] = &inner_b },
};

SEC("classifier") int mim_btf(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *sel = (__u8 *)data + 14;
	__u32 slot, zero = 0;

	if ((void *)(sel + 1) > data_end)
		return 1;
	slot = *sel;
	void *in = bpf_map_lookup_elem(&outer, &slot);
	if (!in)
		return 1;
	__u64 *v = bpf_map_lookup_elem(in, &zero);
	if (!v)
		return 1;
	__sync_fetch_and_add(v, 1);
	return 0;
}

char __license[] SEC("license") = "GPL";
