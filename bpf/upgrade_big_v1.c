/* upgrade bench, v1: value {packets, bytes}, room for 1M entries (scripts/bench-upgrade.sh). See upgrade.h. */
#include <linux/types.h>
#define MAP_TYPE BPF_MAP_TYPE_HASH
#define MAX_ENTRIES 1048576
struct counter {
	__u64 packets;
	__u64 bytes;
};
#define COUNT(c, len) do { \
	__sync_fetch_and_add(&(c)->packets, 1); \
	__sync_fetch_and_add(&(c)->bytes, (len)); \
} while (0)
#define EXTRA_MAPS
#define EXTRA(len) do { } while (0)
#include "upgrade.h"
