/* An untyped __ksym variable: the address of the function `tcp_v4_rcv`,
 * which the loader takes from /proc/kallsyms (this kernel's kallsyms lists
 * functions only: no CONFIG_KALLSYMS_ALL). out[0] = &tcp_v4_rcv, out[1] =
 * packets seen.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

extern const void tcp_v4_rcv __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

SEC("classifier") int ksym_cls(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 v = (__u64)&tcp_v4_rcv, *n;

	bpf_map_update_elem(&out, &k, &v, BPF_ANY);
	k = 1;
	n = bpf_map_lookup_elem(&out, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
