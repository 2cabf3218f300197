#!/usr/bin/env python3
"""An exporter as older tc releases sent: struct bpf_map_aux with uds_ver 1
and struct bpf_elf_map entries of 20, 24, 28 or 36 bytes, up to 64 entries
and as many SCM_RIGHTS descriptors per datagram.

Usage: old_tc_sender.py SOCKET_PATH OBJ_NAME CHUNK ENTRY_SIZE:MAP_ID:W0,W1,... ...

Each map is opened by its kernel id (BPF_MAP_GET_FD_BY_ID) and sent with its
entry: the words W0... packed as native u32 (ENTRY_SIZE / 4 of them, which
lets one transfer mix sizes to test that the importer refuses it). CHUNK maps
go in each datagram. num_ent is the number of maps given.

Written for tcbpf-cli/tests/exec/exec_generations.rs, not taken from iproute2.
"""
import array
import ctypes
import os
import socket
import struct
import sys

SYS_BPF = 321  # x86_64
BPF_MAP_GET_FD_BY_ID = 14

libc = ctypes.CDLL(None, use_errno=True)


def map_fd(map_id):
    attr = ctypes.create_string_buffer(struct.pack("=III", map_id, 0, 0), 16)
    fd = libc.syscall(SYS_BPF, BPF_MAP_GET_FD_BY_ID, attr, 16)
    if fd < 0:
        err = ctypes.get_errno()
        sys.exit(f"BPF_MAP_GET_FD_BY_ID {map_id}: {os.strerror(err)}")
    return fd


def main():
    path, obj_name, chunk = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
    maps = []
    for spec in sys.argv[4:]:
        size, map_id, words = spec.split(":")
        words = [int(w) for w in words.split(",")]
        if len(words) * 4 != int(size):
            sys.exit(f"{spec}: {len(words)} words are not {size} bytes")
        maps.append((struct.pack("=%dI" % len(words), *words), map_fd(int(map_id))))
    st = os.stat(__file__)
    header = struct.pack("=HH64s4xQQ", 1, len(maps), obj_name, st.st_dev, st.st_ino)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.connect(path)
    for start in range(0, len(maps), chunk):
        part = maps[start:start + chunk]
        payload = header + b"".join(entry for entry, _ in part)
        fds = array.array("i", [fd for _, fd in part])
        sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    print(f"sent {len(maps)} maps")


if __name__ == "__main__":
    main()
