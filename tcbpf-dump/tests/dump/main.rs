//! `tcbpf dump` against the real kernel: its grammar and refusals, the
//! read loop and pcapng output, every way a dump ends, real traffic. One
//! test binary; each file is a module (`cargo test -p tcbpf-dump --test
//! dump dump_ends::`).

mod dump_cli;
mod dump_ends;
mod dump_output;
mod dump_traffic;
