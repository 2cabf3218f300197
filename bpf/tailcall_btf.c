/* BTF program array with a `values` initialiser: slot 0 holds tail_a
 * (section classifier/tail_a, loaded because the array names it), which
 * returns 2; an empty slot falls through to 1. hits[0] counts entries,
 * hits[1] runs of tail_a.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} hits SEC(".maps");

static __always_inline void hit(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("classifier/tail_a") int tail_a(struct __sk_buff *skb)
{
	hit(1);
	return TC_ACT_SHOT;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} jmp SEC(".maps") = {
	.values = { [0] = (void *)&tail_a },
};

SEC("classifier") int tail_entry(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *sel = (__u8 *)data + 14;

	hit(0);
	if ((void *)(sel + 1) > data_end)
		return 1;
	bpf_tail_call(skb, &jmp, *sel);
	return 1;
}

char __license[] SEC("license") = "GPL";
