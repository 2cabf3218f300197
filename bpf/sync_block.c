/* The classifier of the tcbpf sync tests and scripts/fleet-demo.sh: drops
 * UDP to the ports held in sync_blocked, a set that `tcbpf sync` keeps equal
 * to the policy in etcd (PREFIX/maps/blocked/PORT), and IPv4 packets from
 * the addresses held in sync_src (large policies: up to 131072 entries).
 * Keys are in host byte order, so the policy reads `key 53` and
 * `key 167772161` (10.0.0.1); values are flags (any value blocks).
 * Counters: [0] UDP passed, [1] UDP dropped. Every map is pinned by name
 * (tc's global namespace of the bpffs in use).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u16);
	__type(value, __u8);
	__uint(max_entries, 131072);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sync_blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, 131072);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sync_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sync_udp_stats SEC(".maps");

SEC("classifier") int sync_block(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	__u32 src = bpf_ntohl(ip->saddr);
	if (bpf_map_lookup_elem(&sync_src, &src))
		return TC_ACT_SHOT;
	if ((void *)(udp + 1) > data_end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_OK;

	__u16 port = bpf_ntohs(udp->dest);
	__u32 key = bpf_map_lookup_elem(&sync_blocked, &port) ? 1 : 0;
	__u64 *count = bpf_map_lookup_elem(&sync_udp_stats, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return key ? TC_ACT_SHOT : TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
