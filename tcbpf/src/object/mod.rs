//! ELF object parsing into an `ObjectSpec`: maps, programs, relocations,
//! BTF and license, as plain data that can be inspected and edited.
//! Pure: no syscalls here.
