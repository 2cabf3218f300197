//! The exec proxy: import maps from a socket, describe them in the
//! environment (`BPF_NUM_MAPS`, `BPF_MAP<id>`, `BPF_MAP_<NAME>`) and `execvp`
//! a command. The only place that clears `FD_CLOEXEC`.
