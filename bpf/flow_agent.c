/* A flow agent shaped like netobserv's (netobserv-ebpf-agent's
 * maps_definition.h): six BPF_F_NO_PREALLOC hashes of 2^24 entries, ring
 * buffers, per-CPU counters and LPM filters. The kernel allocates only the
 * hashes' buckets at creation (about 1.6 GB here; netobserv's agent reports
 * 1.8 GB after tc loads it); counted as preallocated they would be 22 GB,
 * over the default limit of half the RAM. tcbpf must load it.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define FLOWS (1U << 24)

struct flow_id {
	__u8 src_mac[6], dst_mac[6];
	__u8 src_ip[16], dst_ip[16];
	__u16 eth_protocol, src_port, dst_port;
	__u8 transport_protocol, direction;
	__u32 if_index;
};

struct flow_metrics {
	__u64 packets, bytes, start_mono_time_ts, end_mono_time_ts;
	__u16 flags;
	__u8 errno_, dscp;
	__u32 sampling;
	__u8 dst_mac[6], src_mac[6];
	__u64 reserved[6];
};

struct additional_metrics {
	__u64 dns_latency, rtt, pkt_drops, nat_ts;
	__u32 network_events[4][8];
};

struct dns_id {
	__u8 src_ip[16], dst_ip[16];
	__u16 src_port, dst_port, id;
	__u8 protocol;
};

struct lpm_key {
	__u32 prefix_len;
	__u8 ip[16];
};

#define NO_PREALLOC_HASH(name, k, v)                  \
	struct {                                      \
		__uint(type, BPF_MAP_TYPE_HASH);      \
		__type(key, k);                       \
		__type(value, v);                     \
		__uint(max_entries, FLOWS);           \
		__uint(map_flags, BPF_F_NO_PREALLOC); \
	} name SEC(".maps")

NO_PREALLOC_HASH(aggregated_flows, struct flow_id, struct flow_metrics);
NO_PREALLOC_HASH(additional_flow_metrics, struct flow_id, struct additional_metrics);
NO_PREALLOC_HASH(dns_flows, struct dns_id, __u64);
NO_PREALLOC_HASH(ipsec_ingress_map, __u64, __u64);
NO_PREALLOC_HASH(ipsec_egress_map, __u64, __u64);
NO_PREALLOC_HASH(ssl_flows, struct flow_id, __u64);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} direct_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} packet_record SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 16);
} global_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_key);
	__type(value, __u32);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} filter_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_key);
	__type(value, __u32);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} peer_filter_map SEC(".maps");

/* Counts each packet and records its size under an all-zero flow id. */
SEC("classifier")
int tc_ingress_flow_parse(struct __sk_buff *skb)
{
	struct flow_id id = {};
	struct flow_metrics *m, init = { .packets = 1 };
	__u32 k = 0;
	__u32 *c = bpf_map_lookup_elem(&global_counters, &k);

	if (c)
		*c += 1;
	init.bytes = skb->len;
	m = bpf_map_lookup_elem(&aggregated_flows, &id);
	if (m) {
		__sync_fetch_and_add(&m->packets, 1);
		__sync_fetch_and_add(&m->bytes, skb->len);
	} else {
		bpf_map_update_elem(&aggregated_flows, &id, &init, BPF_NOEXIST);
	}
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
