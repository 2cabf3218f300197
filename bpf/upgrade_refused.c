/* upgrade, refused: v1 with `bytes` turned from an integer into a struct;
 * no value can follow that. See upgrade.h. */
#include <linux/types.h>
#define MAP_TYPE BPF_MAP_TYPE_HASH
#define MAX_ENTRIES 256
struct split {
	__u32 lo;
	__u32 hi;
};
struct counter {
	__u64 packets;
	struct split bytes;
};
#define COUNT(c, len) do { \
	__sync_fetch_and_add(&(c)->packets, 1); \
	__sync_fetch_and_add(&(c)->bytes.lo, (len)); \
} while (0)
#define EXTRA_MAPS
#define EXTRA(len) do { } while (0)
#include "upgrade.h"
