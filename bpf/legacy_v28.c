/* struct bpf_elf_map of 28 bytes (7 fields), as older iproute2 defined it. */
#define MAP_FIELDS 7
#include "legacy_sized.h"
