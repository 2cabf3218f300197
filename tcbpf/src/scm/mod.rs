//! The iproute2 map hand-off: the `struct bpf_map_aux` wire format (pure
//! codec) and sending/receiving it with SCM_RIGHTS over AF_UNIX datagrams.
