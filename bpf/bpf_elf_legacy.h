/* iproute2's legacy map definition, declared by each object itself as
 * iproute2's own headers (bpf_elf.h) did. MAP_FIELDS picks how many of
 * the nine u32 fields the struct has: 5 (20 bytes, the original with
 * flags), 6 (+id, 24), 7 (+pinning, 28) or 9 (+inner_id, inner_idx, 36).
 */
#ifndef BPF_ELF_LEGACY_H
#define BPF_ELF_LEGACY_H
#include <linux/types.h>

#ifndef MAP_FIELDS
#define MAP_FIELDS 9
#endif

#define PIN_NONE	0
#define PIN_OBJECT_NS	1
#define PIN_GLOBAL_NS	2

struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
#if MAP_FIELDS >= 6
	__u32 id;
#endif
#if MAP_FIELDS >= 7
	__u32 pinning;
#endif
#if MAP_FIELDS >= 9
	__u32 inner_id;
	__u32 inner_idx;
#endif
};

#define __section(x) __attribute__((section(x), used))
#endif
