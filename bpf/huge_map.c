/* An object whose hash map asks for 2^27 entries of 4 KB values (what one
 * flipped byte of max_entries can do): preallocated, that is over 500 GB of
 * kernel memory. (2^27 keeps the BTF valid: its max_entries array stays
 * under 4 GB.) tcbpf must refuse it before creating any map (exit 2, naming
 * the map and its size) unless max-memory allows it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} small SEC(".maps");

struct page_value {
	__u64 words[512];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct page_value);
	__uint(max_entries, 1U << 27);
} huge SEC(".maps");

SEC("classifier")
int touch(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&small, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	v = bpf_map_lookup_elem(&huge, &k);
	return v ? 1 : 0;
}

char __license[] SEC("license") = "GPL";
