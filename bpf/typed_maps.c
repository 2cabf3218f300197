/* Maps typed by BTF for the typed map helper (tcbpf map … without type
 * words): a scalar key with a counter struct, a struct with a nested struct
 * and an array, an enum, a char array, a bitfield struct, a per-CPU struct,
 * a 4-member struct for the benchmark, a map keyed by a struct, and global
 * data (.data/.bss variables). The classifier touches each so the maps
 * belong to the program; it passes every packet.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct inner {
	__u16 port;
	__u8 proto;
	__s8 delta;
};

struct nested {
	__u32 id;
	struct inner in;
	__u32 hist[3];
	union {
		__u32 as_u32;
		__u8 as_bytes[4];
	} u;
};

enum verdict {
	V_PASS = 0,
	V_DROP = 2,
	V_REDIRECT = 7,
};

struct bits {
	__u32 ihl : 4;
	__u32 version : 4;
	__u32 flags : 3;
	__s32 offset : 13;
	__u32 tos : 8;
	enum verdict v : 8;
};

struct quad {
	__u64 packets;
	__u64 bytes;
	__u32 drops;
	__u32 last_seen;
};

struct flow {
	__u32 saddr;
	__u16 sport;
	__u8 proto;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, 1024);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct nested);
	__uint(max_entries, 64);
} nesteds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, enum verdict);
	__uint(max_entries, 4);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, char[16]);
	__uint(max_entries, 64);
} names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct bits);
	__uint(max_entries, 64);
} bitfields SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, 64);
} pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct quad);
	__uint(max_entries, 1100000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} quads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct flow);
	__type(value, __u64);
	__uint(max_entries, 64);
} flows SEC(".maps");

__u64 hits = 5;
char label[8] = "edge";
__u32 misses;

SEC("classifier") int typed_cls(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct flow f = {};
	void *p;

	if ((p = bpf_map_lookup_elem(&counters, &k)))
		((struct counter *)p)->packets++;
	if ((p = bpf_map_lookup_elem(&nesteds, &k)))
		((struct nested *)p)->id++;
	if ((p = bpf_map_lookup_elem(&verdicts, &k)))
		return *(enum verdict *)p == V_DROP ? TC_ACT_SHOT : TC_ACT_OK;
	if ((p = bpf_map_lookup_elem(&names, &k)))
		((char *)p)[0] = 'x';
	if ((p = bpf_map_lookup_elem(&bitfields, &k)))
		((struct bits *)p)->tos++;
	if ((p = bpf_map_lookup_elem(&pcpu, &k)))
		((struct counter *)p)->bytes += skb->len;
	if ((p = bpf_map_lookup_elem(&quads, &k)))
		((struct quad *)p)->drops++;
	if ((p = bpf_map_lookup_elem(&flows, &f)))
		(*(__u64 *)p)++;
	hits++;
	misses += label[0];
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
