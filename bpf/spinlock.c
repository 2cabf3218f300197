/* A hash map whose value holds a bpf_spin_lock (BTF-described, pinned by
 * name), for `tcbpf map update|lookup … lock` (BPF_F_LOCK). The classifier
 * adds one to the counter of key 0 under the lock and passes the packet.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct locked_value {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct locked_value);
	__uint(max_entries, 4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} locked SEC(".maps");

SEC("classifier")
int count_locked(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct locked_value *v = bpf_map_lookup_elem(&locked, &key);

	if (v) {
		bpf_spin_lock(&v->lock);
		v->count++;
		bpf_spin_unlock(&v->lock);
	}
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
