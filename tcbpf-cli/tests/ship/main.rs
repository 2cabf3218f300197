//! Shipping: install.sh, the Debian package, the systemd units and their
//! sandbox. One test binary; each file is a module
//! (`cargo test -p tcbpf-cli --test ship install_script::`).

mod deb_package;
mod install_script;
mod systemd_caps;
mod systemd_units;
