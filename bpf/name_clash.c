/* Fixture of the exporter's exposition test: maps whose key members, value
 * fields and names would give duplicate label names or identical series if
 * names were only joined with '_':
 *   clash[{dev, key_dev, in.port, in_port}]  key members 'dev' (a device
 *        label too) and 'key_dev', nested 'in.port' beside 'in_port'; value
 *        fields 'packets', 'in.port' and 'in_port'
 *   a[0].b_c and a_b[0].c                   both tcbpf_a_b_c
 * For every packet each map's one entry counts one more (clash: the value's
 * three fields 1, 2 and 3 more). Attached twice on one device, the two
 * copies of each map have the same names. Returns TC_ACT_UNSPEC, so a second filter runs too.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct clash_key {
	__u32 dev;
	__u32 key_dev;
	struct {
		__u32 port;
	} in;
	__u32 in_port;
};

struct clash_value {
	__u64 packets;
	struct {
		__u64 port;
	} in;
	__u64 in_port;
};

struct a_value {
	__u64 b_c;
};

struct a_b_value {
	__u64 c;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct clash_key);
	__type(value, struct clash_value);
	__uint(max_entries, 4);
} clash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct a_value);
	__uint(max_entries, 1);
} a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct a_b_value);
	__uint(max_entries, 1);
} a_b SEC(".maps");

SEC("classifier")
int count_clash(struct __sk_buff *skb)
{
	struct clash_key k = { .dev = 1, .key_dev = 2, .in = { .port = 3 }, .in_port = 4 };
	struct clash_value init = { .packets = 1, .in = { .port = 2 }, .in_port = 3 };
	struct clash_value *v = bpf_map_lookup_elem(&clash, &k);
	__u32 zero = 0;

	if (v) {
		__sync_fetch_and_add(&v->packets, 1);
		__sync_fetch_and_add(&v->in.port, 2);
		__sync_fetch_and_add(&v->in_port, 3);
	} else {
		bpf_map_update_elem(&clash, &k, &init, BPF_ANY);
	}
	struct a_value *av = bpf_map_lookup_elem(&a, &zero);
	if (av)
		__sync_fetch_and_add(&av->b_c, 1);
	struct a_b_value *abv = bpf_map_lookup_elem(&a_b, &zero);
	if (abv)
		__sync_fetch_and_add(&abv->c, 1);
	return TC_ACT_UNSPEC; /* the next filter runs too */
}

char __license[] SEC("license") = "GPL";
