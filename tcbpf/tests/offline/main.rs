//! The library's tests that need no kernel: ELF, BTF, CO-RE and typed value
//! parsers on the committed fixtures and on mutated bytes. One test binary;
//! each file is a module (`cargo test -p tcbpf --test offline btf_parse::`).

mod btf_ext;
mod btf_fmt;
mod btf_fuzz;
mod btf_parse;
mod btf_target;
mod core_relocations;
mod core_vmlinux;
mod obj_mutation;
mod obj_parse;
mod typed_anonymous;
mod typed_values;
