//! Typed key/value codecs for the shell: integers in host or network order,
//! addresses, strings and raw bytes, checked against the map's sizes.
//! Pure: no syscalls here.
