/* struct bpf_elf_map of 20 bytes (5 fields), as older iproute2 defined it. */
#define MAP_FIELDS 5
#include "legacy_sized.h"
