/* upgrade, a program the verifier rejects: v2 that reads the packet
 * without a bounds check. See upgrade.h. */
#include <linux/types.h>
#define MAP_TYPE BPF_MAP_TYPE_HASH
#define MAX_ENTRIES 256
struct counter {
	__u64 packets;
	__u64 bytes;
	__u32 drops;
};
#define COUNT(c, len) do { \
	__sync_fetch_and_add(&(c)->packets, 1); \
	__sync_fetch_and_add(&(c)->bytes, (len)); \
} while (0)
#define EXTRA_MAPS
#define EXTRA(len) do { \
	__u8 *p = (void *)(long)skb->data; \
	if (p[40] == 1) \
		return TC_ACT_SHOT; \
} while (0)
#include "upgrade.h"
