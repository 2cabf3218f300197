/* A typed __ksym variable: the per-CPU `runqueues` (BTF VAR of vmlinux),
 * reached with bpf_per_cpu_ptr, its `cpu` field read through CO-RE.
 * out[0] = the CPU the packet ran on, out[1] = rq->cpu of that CPU's
 * runqueue. The loader resolves it to vmlinux's BTF id; the kernel then
 * needs the variable's address from kallsyms, which only a kernel built
 * with CONFIG_KALLSYMS_ALL has.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct rq {
	int cpu;
} __attribute__((preserve_access_index));

extern struct rq runqueues __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

SEC("classifier") int ksym_typed_cls(struct __sk_buff *skb)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct rq *rq = bpf_per_cpu_ptr(&runqueues, cpu);
	__u32 k = 0;
	__u64 v = cpu;

	bpf_map_update_elem(&out, &k, &v, BPF_ANY);
	k = 1;
	v = rq ? rq->cpu : 0xffffffff;
	bpf_map_update_elem(&out, &k, &v, BPF_ANY);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
