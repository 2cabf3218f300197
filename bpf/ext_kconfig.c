/* Externs from .kconfig, resolved by the loader as libbpf resolves them:
 * LINUX_KERNEL_VERSION from the running kernel, CONFIG_* from the
 * kernel's config (bool, tristate, int, string), and a weak one the
 * kernel does not have (zero). Each packet writes what it read into the
 * array `out` (see the index names below), so a test can compare it with
 * /proc/config.gz and uname.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig;               /* bool, y */
extern enum libbpf_tristate CONFIG_NET_CLS_BPF __kconfig; /* tristate */
extern int CONFIG_HZ __kconfig __weak;                    /* int */
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig __weak; /* string */
extern _Bool CONFIG_TCBPF_NO_SUCH_OPTION __kconfig __weak; /* absent: 0 */
extern int CONFIG_TCBPF_NO_SUCH_INT __kconfig __weak;      /* absent: 0 */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

static void put(__u32 k, __u64 v)
{
	bpf_map_update_elem(&out, &k, &v, BPF_ANY);
}

SEC("classifier") int kconfig_cls(struct __sk_buff *skb)
{
	__u64 host = 0;

	put(0, LINUX_KERNEL_VERSION);
	put(1, CONFIG_BPF_SYSCALL);
	put(2, CONFIG_NET_CLS_BPF);
	put(3, CONFIG_HZ);
	__builtin_memcpy(&host, CONFIG_DEFAULT_HOSTNAME, 8);
	put(4, host);
	put(5, CONFIG_TCBPF_NO_SUCH_OPTION);
	put(6, CONFIG_TCBPF_NO_SUCH_INT);
	put(7, skb->len);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
