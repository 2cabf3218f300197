/* struct bpf_elf_map of 24 bytes (6 fields), as older iproute2 defined it. */
#define MAP_FIELDS 6
#include "legacy_sized.h"
