/* upgrade, entries that do not fit: v1 with room for 2 entries only. A
 * running v1 holding more keys cannot move into it. See upgrade.h. */
#include <linux/types.h>
#define MAP_TYPE BPF_MAP_TYPE_HASH
#define MAX_ENTRIES 2
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
