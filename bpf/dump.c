/* `tcbpf dump`: fentry/fexit tracing programs that watch one tc program
 * (a cls_bpf filter or a tcx program) without changing it. tcbpf loads this
 * object once per traced program, with attach_prog_fd = the target and
 * attach_btf_id = the target's main function in the target's BTF, and
 * attaches both programs with BPF_LINK_CREATE; the target stays attached.
 *
 * dump_entry (fentry) runs before the target: it keeps packets on the
 * device and direction asked for (`cfg`), copies the first bytes of the
 * packet (at most SNAP_MAX) with the length, ifindex, direction, mark and
 * priority into a per-CPU stash slot of this target, and runs the packet
 * filter `dump_filter` when one was asked for: tcbpf replaces that
 * function's body at load time with the pcap expression's classic BPF,
 * translated to eBPF instructions.
 *
 * dump_exit (fexit) runs after the target: it adds the return value (the
 * verdict), mark and priority after, and the redirect target ifindex that
 * bpf_redirect*() left in the task's bpf_net_context, keeps only the
 * verdict asked for, and writes the stashed record to the ring buffer
 * (header + captured bytes: per-event memory is bounded by SNAP_MAX). A
 * full ring counts a loss in `dump_counters`: nothing is dropped silently.
 *
 * The ring buffer, the stash and the counters are shared by every target
 * (tcbpf hands the first load's maps to the next ones), so the records of
 * a chain arrive in the order the programs ran.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define SNAP_MAX 2048
#define MAX_TARGETS 64
#define ACT_REDIRECT 7

/* One record; the ring holds the header and `caplen` bytes of `data`. */
struct dump_event {
	__u64 ts;		/* bpf_ktime_get_ns() at entry */
	__u32 target;		/* the traced program's index (cfg.target) */
	__u32 len;		/* skb->len */
	__u32 caplen;		/* bytes of data that follow */
	__u32 ifindex;		/* skb->dev->ifindex */
	__u32 ingress;		/* skb->tc_at_ingress */
	__u32 mark;		/* before the program */
	__u32 priority;
	__s32 verdict;		/* the program's return value */
	__u32 mark_after;
	__u32 priority_after;
	__u32 redirect_ifindex;	/* bpf_redirect*() target, 0 when none */
	__u32 flags;		/* 1: entry kept the packet (stash only) */
	/* At most SNAP_MAX bytes are used; the room after them lets lengths
	 * be masked to 12 bits, a bound the verifier keeps (a clamp done by
	 * clang on a zero-extended copy is lost to it). */
	__u8 data[2 * SNAP_MAX];
};

struct dump_config {
	__u32 target;
	__u32 ifindex;		/* 0: any device */
	__u32 direction;	/* 0 any, 1 ingress, 2 egress */
	__u32 snaplen;		/* bytes written per packet */
	__u32 filter_snap;	/* bytes the filter may look at (>= snaplen) */
	__u32 filter;		/* 1: run dump_filter */
	__u32 verdict_on;	/* 1: keep only `verdict` */
	__s32 verdict;
};

struct dump_counts {
	__u64 seen;		/* packets on the device and direction */
	__u64 filtered;		/* refused by the filter */
	__u64 skipped;		/* another verdict than the one asked for */
	__u64 written;		/* records in the ring */
	__u64 lost;		/* ring full: record not written */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} dump_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct dump_event);
	__uint(max_entries, MAX_TARGETS);
} dump_stash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct dump_counts);
	__uint(max_entries, MAX_TARGETS);
} dump_counters SEC(".maps");

/* Set by tcbpf (the .bss map) before the programs are attached. */
struct dump_config cfg;

/* The packet filter: replaced at load time by the translated pcap
 * expression; it must stay the last function of dump_entry. Global, so
 * the verifier checks it on its own and clang cannot fold its result. */
__noinline int dump_filter(const struct dump_event *ev)
{
	return ev != 0 && ev->caplen != 0xffffffff;
}

SEC("fentry/tc")
int BPF_PROG(dump_entry, struct sk_buff *skb)
{
	__u32 key = cfg.target;
	struct dump_event *ev = bpf_map_lookup_elem(&dump_stash, &key);
	struct dump_counts *c = bpf_map_lookup_elem(&dump_counters, &key);
	__u32 ifindex, ingress, len, head, cap;

	if (!ev || !c)
		return 0;
	ev->flags = 0;
	ifindex = BPF_CORE_READ(skb, dev, ifindex);
	if (cfg.ifindex && ifindex != cfg.ifindex)
		return 0;
	ingress = BPF_CORE_READ_BITFIELD_PROBED(skb, tc_at_ingress);
	if ((cfg.direction == 1 && !ingress) || (cfg.direction == 2 && ingress))
		return 0;
	c->seen++;
	len = BPF_CORE_READ(skb, len);
	head = len - BPF_CORE_READ(skb, data_len);
	cap = cfg.filter_snap;
	if (cap > head)
		cap = head;
	if (cap > SNAP_MAX)
		cap = SNAP_MAX;
	barrier_var(cap);
	cap &= 2 * SNAP_MAX - 1;
	if (bpf_probe_read_kernel(ev->data, cap, BPF_CORE_READ(skb, data)))
		cap = 0;
	ev->ts = bpf_ktime_get_ns();
	ev->target = key;
	ev->len = len;
	ev->caplen = cap;
	ev->ifindex = ifindex;
	ev->ingress = ingress;
	ev->mark = BPF_CORE_READ(skb, mark);
	ev->priority = BPF_CORE_READ(skb, priority);
	if (cfg.filter && !dump_filter(ev)) {
		c->filtered++;
		return 0;
	}
	if (ev->caplen > cfg.snaplen)
		ev->caplen = cfg.snaplen;
	ev->flags = 1;
	return 0;
}

SEC("fexit/tc")
int BPF_PROG(dump_exit, struct sk_buff *skb, int ret)
{
	__u32 key = cfg.target;
	struct dump_event *ev = bpf_map_lookup_elem(&dump_stash, &key);
	struct dump_counts *c = bpf_map_lookup_elem(&dump_counters, &key);
	__u64 size;

	if (!ev || !c || !(ev->flags & 1))
		return 0;
	ev->flags = 0;
	if (cfg.verdict_on && ret != cfg.verdict) {
		c->skipped++;
		return 0;
	}
	ev->verdict = ret;
	ev->mark_after = BPF_CORE_READ(skb, mark);
	ev->priority_after = BPF_CORE_READ(skb, priority);
	ev->redirect_ifindex = 0;
	if (ret == ACT_REDIRECT) {
		struct task_struct *task = bpf_get_current_task_btf();

		ev->redirect_ifindex = BPF_CORE_READ(task, bpf_net_context, ri.tgt_index);
	}
	size = ev->caplen;
	if (size > SNAP_MAX)
		size = SNAP_MAX;
	barrier_var(size);
	size &= 2 * SNAP_MAX - 1;
	size += __builtin_offsetof(struct dump_event, data);
	if (bpf_ringbuf_output(&dump_events, ev, size, 0))
		c->lost++;
	else
		c->written++;
	return 0;
}

char __license[] SEC("license") = "GPL";
