/* upgrade v1, a fix of its code only: the same maps as v1 (value
 * {packets, bytes}, 256 entries), bytes clamped to 64 KiB per packet. Its
 * program's tag differs from v1's while every map is reused: an upgrade
 * v1 -> v1_fix is not "nothing to do". See upgrade.h. */
#include <linux/types.h>
#define MAP_TYPE BPF_MAP_TYPE_HASH
#define MAX_ENTRIES 256
struct counter {
	__u64 packets;
	__u64 bytes;
};
#define COUNT(c, len) do { \
	__sync_fetch_and_add(&(c)->packets, 1); \
	__sync_fetch_and_add(&(c)->bytes, (len) > 0xffff ? 0xffff : (len)); \
} while (0)
#define EXTRA_MAPS
#define EXTRA(len) do { } while (0)
#include "upgrade.h"
