/* An importer built against the iproute2 headers of 2016-2017, when
 * struct bpf_elf_map had seven fields (28 bytes), receiving as that era's
 * examples/bpf/bpf_agent.c did: at most BPF_SCM_MAX_FDS (64) maps, one
 * datagram of up to 64 entries at a time, stopping when num_ent is reached.
 *
 * Usage: receiver28 SOCKET_PATH
 * Binds SOCKET_PATH, receives, unlinks it, then prints one line per map:
 *   map I id ID type T key K value V max M flags F pinning P value1 X
 * where X is the u64 at u32 key 1 of the map (looked up through the
 * received descriptor), or "none". The first line is
 *   obj NAME num_ent N received R
 * Exit status 0, or 1 with a message on stderr.
 *
 * Compiled by tcbpf-cli/tests/exec/exec_generations.rs with gcc; written for
 * that test, not taken from iproute2.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define SCM_MAX_FDS 64

struct elf_map28 {
	uint32_t type, size_key, size_value, max_elem, flags, id, pinning;
};

struct elf_st {
	dev_t st_dev;
	ino_t st_ino;
};

struct map_aux28 {
	unsigned short uds_ver;
	unsigned short num_ent;
	char obj_name[64];
	struct elf_st obj_st;
	struct elf_map28 ent[SCM_MAX_FDS];
};

static int lookup_u64(int fd, uint32_t key, uint64_t *value)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = fd;
	attr.key = (uint64_t)(unsigned long)&key;
	attr.value = (uint64_t)(unsigned long)value;
	return syscall(__NR_bpf, BPF_MAP_LOOKUP_ELEM, &attr, sizeof(attr));
}

int main(int argc, char **argv)
{
	struct map_aux28 aux, msg_aux;
	int fds[SCM_MAX_FDS];
	char cbuf[CMSG_SPACE(sizeof(int) * SCM_MAX_FDS)];
	struct sockaddr_un addr;
	int sock, got = 0, i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
		return 1;
	}
	sock = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sock < 0) {
		perror("socket");
		return 1;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	strncpy(addr.sun_path, argv[1], sizeof(addr.sun_path) - 1);
	if (bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("bind");
		return 1;
	}
	memset(&aux, 0, sizeof(aux));
	while (got < SCM_MAX_FDS) {
		struct iovec iov = { .iov_base = &msg_aux, .iov_len = sizeof(msg_aux) };
		struct msghdr hdr = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *cmsg;
		int n;

		if (recvmsg(sock, &hdr, 0) <= 0) {
			perror("recvmsg");
			return 1;
		}
		cmsg = CMSG_FIRSTHDR(&hdr);
		if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS || (hdr.msg_flags & MSG_CTRUNC)) {
			fprintf(stderr, "no or truncated SCM_RIGHTS\n");
			return 1;
		}
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n <= 0 || got + n > SCM_MAX_FDS) {
			fprintf(stderr, "bad descriptor count %d\n", n);
			return 1;
		}
		memcpy(&fds[got], CMSG_DATA(cmsg), sizeof(int) * n);
		memcpy(&aux.ent[got], msg_aux.ent, sizeof(aux.ent[0]) * n);
		memcpy(&aux, &msg_aux, offsetof(struct map_aux28, ent));
		got += n;
		if (got >= aux.num_ent)
			break;
	}
	unlink(argv[1]);
	printf("obj %s num_ent %u received %d\n", aux.obj_name, aux.num_ent, got);
	for (i = 0; i < got; i++) {
		struct elf_map28 *e = &aux.ent[i];
		uint64_t v = 0;

		printf("map %d id %u type %u key %u value %u max %u flags %u pinning %u value1 ",
		       i, e->id, e->type, e->size_key, e->size_value, e->max_elem,
		       e->flags, e->pinning);
		if (lookup_u64(fds[i], 1, &v) == 0)
			printf("%llu\n", (unsigned long long)v);
		else
			printf("none\n");
	}
	return 0;
}
