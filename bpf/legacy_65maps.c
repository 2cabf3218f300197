/* 65 legacy maps: one more than a legacy maps section may hold (64);
 * loaders must refuse it with a clear error. Never loaded successfully.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "bpf_elf_legacy.h"

struct bpf_elf_map __section("maps") map0 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 1 };
struct bpf_elf_map __section("maps") map1 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 2 };
struct bpf_elf_map __section("maps") map2 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 3 };
struct bpf_elf_map __section("maps") map3 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 4 };
struct bpf_elf_map __section("maps") map4 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 5 };
struct bpf_elf_map __section("maps") map5 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 6 };
struct bpf_elf_map __section("maps") map6 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 7 };
struct bpf_elf_map __section("maps") map7 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 8 };
struct bpf_elf_map __section("maps") map8 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 9 };
struct bpf_elf_map __section("maps") map9 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 10 };
struct bpf_elf_map __section("maps") map10 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 11 };
struct bpf_elf_map __section("maps") map11 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 12 };
struct bpf_elf_map __section("maps") map12 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 13 };
struct bpf_elf_map __section("maps") map13 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 14 };
struct bpf_elf_map __section("maps") map14 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 15 };
struct bpf_elf_map __section("maps") map15 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 16 };
struct bpf_elf_map __section("maps") map16 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 17 };
struct bpf_elf_map __section("maps") map17 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 18 };
struct bpf_elf_map __section("maps") map18 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 19 };
struct bpf_elf_map __section("maps") map19 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 20 };
struct bpf_elf_map __section("maps") map20 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 21 };
struct bpf_elf_map __section("maps") map21 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 22 };
struct bpf_elf_map __section("maps") map22 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 23 };
struct bpf_elf_map __section("maps") map23 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 24 };
struct bpf_elf_map __section("maps") map24 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 25 };
struct bpf_elf_map __section("maps") map25 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 26 };
struct bpf_elf_map __section("maps") map26 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 27 };
struct bpf_elf_map __section("maps") map27 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 28 };
struct bpf_elf_map __section("maps") map28 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 29 };
struct bpf_elf_map __section("maps") map29 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 30 };
struct bpf_elf_map __section("maps") map30 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 31 };
struct bpf_elf_map __section("maps") map31 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 32 };
struct bpf_elf_map __section("maps") map32 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 33 };
struct bpf_elf_map __section("maps") map33 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 34 };
struct bpf_elf_map __section("maps") map34 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 35 };
struct bpf_elf_map __section("maps") map35 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 36 };
struct bpf_elf_map __section("maps") map36 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 37 };
struct bpf_elf_map __section("maps") map37 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 38 };
struct bpf_elf_map __section("maps") map38 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 39 };
struct bpf_elf_map __section("maps") map39 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 40 };
struct bpf_elf_map __section("maps") map40 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 41 };
struct bpf_elf_map __section("maps") map41 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 42 };
struct bpf_elf_map __section("maps") map42 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 43 };
struct bpf_elf_map __section("maps") map43 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 44 };
struct bpf_elf_map __section("maps") map44 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 45 };
struct bpf_elf_map __section("maps") map45 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 46 };
struct bpf_elf_map __section("maps") map46 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 47 };
struct bpf_elf_map __section("maps") map47 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 48 };
struct bpf_elf_map __section("maps") map48 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 49 };
struct bpf_elf_map __section("maps") map49 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 50 };
struct bpf_elf_map __section("maps") map50 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 51 };
struct bpf_elf_map __section("maps") map51 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 52 };
struct bpf_elf_map __section("maps") map52 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 53 };
struct bpf_elf_map __section("maps") map53 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 54 };
struct bpf_elf_map __section("maps") map54 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 55 };
struct bpf_elf_map __section("maps") map55 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 56 };
struct bpf_elf_map __section("maps") map56 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 57 };
struct bpf_elf_map __section("maps") map57 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 58 };
struct bpf_elf_map __section("maps") map58 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 59 };
struct bpf_elf_map __section("maps") map59 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 60 };
struct bpf_elf_map __section("maps") map60 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 61 };
struct bpf_elf_map __section("maps") map61 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 62 };
struct bpf_elf_map __section("maps") map62 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 63 };
struct bpf_elf_map __section("maps") map63 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 64 };
struct bpf_elf_map __section("maps") map64 = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .id = 65 };

__section("classifier") int too_many(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char __license[] __section("license") = "GPL";
