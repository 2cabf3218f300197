/* upgrade v3: v2 with `drops` widened to a u64 and 1024 entries;
 * the second map `sizes` as in v2. See upgrade.h. */
#include <linux/types.h>
#define MAP_TYPE BPF_MAP_TYPE_HASH
#define MAX_ENTRIES 1024
struct counter {
	__u64 packets;
	__u64 bytes;
	__u64 drops;
};
#define COUNT(c, len) do { \
	__sync_fetch_and_add(&(c)->packets, 1); \
	__sync_fetch_and_add(&(c)->bytes, (len)); \
	if ((len) > 1500) \
		__sync_fetch_and_add(&(c)->drops, 1); \
} while (0)
#define EXTRA_MAPS \
struct { \
	__uint(type, BPF_MAP_TYPE_ARRAY); \
	__type(key, __u32); \
	__type(value, __u32); \
	__uint(max_entries, 1); \
} sizes SEC(".maps");
#define EXTRA(len) do { \
	__u32 zero = 0; \
	__u32 *s = bpf_map_lookup_elem(&sizes, &zero); \
	if (s) \
		*s = (len); \
} while (0)
#include "upgrade.h"
