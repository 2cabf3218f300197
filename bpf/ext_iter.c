/* Open-coded iterator kfuncs: bpf_iter_num_new/next/destroy sum the
 * numbers 1..10 plus the packet length modulo 7; for IPv4 packets `out`
 * counts packets by that sum (a 50-byte UDP frame: 55 + 1 = 56).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* The uapi header of this distro predates open-coded iterators. */
struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} out SEC(".maps");

SEC("classifier") int iter_cls(struct __sk_buff *skb)
{
	struct bpf_iter_num it;
	__u64 sum = 0, one = 1, *n;
	int *v;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;

	bpf_iter_num_new(&it, 1, 11);
	while ((v = bpf_iter_num_next(&it)))
		sum += *v;
	bpf_iter_num_destroy(&it);
	sum += skb->len % 7;
	n = bpf_map_lookup_elem(&out, &sum);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&out, &sum, &one, BPF_NOEXIST);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
