/* skb dynptr kfuncs: bpf_dynptr_from_skb and bpf_dynptr_slice read the
 * Ethernet header; `out` counts packets by the EtherType (host order) the
 * slice gave.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags,
			       struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *ptr, __u32 offset,
			      void *buffer, __u32 buffer__szk) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

SEC("classifier") int dynptr_cls(struct __sk_buff *skb)
{
	struct bpf_dynptr ptr;
	struct ethhdr buf, *eth;
	__u64 one = 1, *n;
	__u32 k;

	if (bpf_dynptr_from_skb(skb, 0, &ptr))
		return TC_ACT_OK;
	eth = bpf_dynptr_slice(&ptr, 0, &buf, sizeof(buf));
	if (!eth)
		return TC_ACT_OK;
	k = bpf_ntohs(eth->h_proto);
	n = bpf_map_lookup_elem(&out, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&out, &k, &one, BPF_NOEXIST);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
