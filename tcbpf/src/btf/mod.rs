//! BTF: parse type information, fix it up for the kernel, match CO-RE
//! relocations and pretty-print values. Pure: no syscalls here.
