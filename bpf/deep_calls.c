/* A classifier whose calls nest nine frames deep (the kernel allows
 * eight): the verifier rejects it with E2BIG ("the call stack of 9 frames
 * is too deep"), which must be reported as a verifier rejection (exit 2).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define LEVEL(n, next)                                                         \
	static __attribute__((noinline)) int f##n(volatile int x)              \
	{                                                                      \
		return next(x + n) ^ n;                                        \
	}

static __attribute__((noinline)) int f9(volatile int x)
{
	return x * 3;
}
LEVEL(8, f9)
LEVEL(7, f8)
LEVEL(6, f7)
LEVEL(5, f6)
LEVEL(4, f5)
LEVEL(3, f4)
LEVEL(2, f3)
LEVEL(1, f2)

SEC("classifier")
int deep(struct __sk_buff *skb)
{
	return f1(skb->len) & 1;
}

char __license[] SEC("license") = "GPL";
