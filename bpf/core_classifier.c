/* A tc classifier written the way CO-RE programs are written today: types
 * from vmlinux.h (generated from the kernel's BTF by build.sh), libbpf's
 * headers, and field accesses that clang records as CO-RE relocations.
 *
 * It parses Ethernet/IPv4/UDP through struct __sk_buff, struct ethhdr,
 * struct iphdr (bitfields read with BPF_CORE_READ_BITFIELD) and struct
 * udphdr, counts packets, and drops UDP datagrams whose destination port
 * is a key of `blocked_ports`. `core_facts` records values the relocations
 * produced, so tests can check them against the kernel's BTF.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum counter { CNT_PACKETS, CNT_IPV4, CNT_UDP, CNT_DROPPED, CNT_MAX };

enum fact {
	FACT_IPHDR_SIZE,	/* bpf_core_type_size(struct iphdr) */
	FACT_SKB_DATA_OFF,	/* bpf_core_field_offset(struct __sk_buff, data) */
	FACT_HWTSTAMP_EXISTS,	/* a field the kernel has */
	FACT_FUTURE_EXISTS,	/* a field no kernel has (flavored struct) */
	FACT_BPF_REDIRECT,	/* bpf_core_enum_value(enum bpf_ret_code, BPF_REDIRECT) */
	FACT_IPHDR_KERNEL_ID,	/* bpf_core_type_id_kernel(struct iphdr) */
	FACT_FUTURE_VALUE,	/* read only when the field exists: poisoned */
	FACT_MAX
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CNT_MAX);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, FACT_MAX);
} core_facts SEC(".maps");

/* Key: UDP destination port in host order. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u16);
	__type(value, __u8);
	__uint(max_entries, 64);
} blocked_ports SEC(".maps");

/* A newer layout of __sk_buff this kernel does not have: the ___flavor
 * suffix makes CO-RE match it against the kernel's struct __sk_buff. */
struct __sk_buff___future {
	__u32 len;
	__u32 not_yet_invented;
} __attribute__((preserve_access_index));

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void fact(__u32 idx, __u64 value)
{
	__u64 *v = bpf_map_lookup_elem(&core_facts, &idx);

	if (v)
		*v = value;
}

static __always_inline void record_facts(struct __sk_buff *skb)
{
	struct __sk_buff___future *future = (void *)skb;

	fact(FACT_IPHDR_SIZE, bpf_core_type_size(struct iphdr));
	fact(FACT_SKB_DATA_OFF, bpf_core_field_offset(struct __sk_buff, data));
	fact(FACT_HWTSTAMP_EXISTS, bpf_core_field_exists(skb->hwtstamp));
	fact(FACT_FUTURE_EXISTS, bpf_core_field_exists(future->not_yet_invented));
	fact(FACT_BPF_REDIRECT, bpf_core_enum_value(enum bpf_ret_code, BPF_REDIRECT));
	fact(FACT_IPHDR_KERNEL_ID, bpf_core_type_id_kernel(struct iphdr));
	if (bpf_core_field_exists(future->not_yet_invented))
		fact(FACT_FUTURE_VALUE, future->not_yet_invented);
}

SEC("classifier")
int core_classify(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	__u16 port;

	count(CNT_PACKETS);
	record_facts(skb);
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || BPF_CORE_READ_BITFIELD(ip, version) != 4)
		return TC_ACT_OK;
	count(CNT_IPV4);
	if (ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	udp = (void *)ip + BPF_CORE_READ_BITFIELD(ip, ihl) * 4;
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	count(CNT_UDP);
	port = bpf_ntohs(udp->dest);
	if (bpf_map_lookup_elem(&blocked_ports, &port)) {
		bpf_printk("core_classifier: drop UDP to port %d", port);
		count(CNT_DROPPED);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
