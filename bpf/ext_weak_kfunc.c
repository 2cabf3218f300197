/* A weak kfunc the kernel does not have, guarded by bpf_ksym_exists(),
 * beside one it has: out[0] = 1 when the absent one "exists" (must be
 * 0), out[1] = 1 when the present one does (must be 1). The program
 * loads although the call to the absent kfunc stays in its code.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#ifndef bpf_ksym_exists
/* As libbpf 1.2's bpf_helpers.h defines it (this distro has libbpf 1.1). */
#define bpf_ksym_exists(sym) ({ \
	_Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak"); \
	!!sym; \
})
#endif

extern int tcbpf_no_such_kfunc(struct __sk_buff *skb) __ksym __weak;
extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags,
			       struct bpf_dynptr *ptr__uninit) __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

SEC("classifier") int weak_cls(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 v = 0;

	if (bpf_ksym_exists(tcbpf_no_such_kfunc)) {
		v = 1;
		tcbpf_no_such_kfunc(skb);
	}
	bpf_map_update_elem(&out, &k, &v, BPF_ANY);
	k = 1;
	v = bpf_ksym_exists(bpf_dynptr_from_skb) ? 1 : 0;
	bpf_map_update_elem(&out, &k, &v, BPF_ANY);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
