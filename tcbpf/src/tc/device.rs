//! Network interfaces by name and by index (`RTM_GETLINK`), in the calling
//! thread's network namespace. sysfs is not used: after `setns` it still
//! shows the namespace it was mounted in.

use super::error::{Error, Result};
use super::message::{Attrs, Request};
use super::socket::Socket;

const RTM_GETLINK: u16 = 18;
const IFLA_IFNAME: u16 = 3;
/// `IFNAMSIZ` minus the NUL.
const IFNAME_MAX: usize = 15;

/// `struct ifinfomsg` for interface `index` (0: look up by name).
fn ifinfomsg(index: i32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

/// The index of the interface named `name`; "no such device 'x'" when the
/// namespace has none.
pub fn ifindex(sock: &Socket, name: &str) -> Result<u32> {
    let no_such = || {
        Error::with_message(
            "find device",
            libc::ENODEV,
            format!("no such device '{name}'"),
        )
    };
    if name.is_empty() || name.len() > IFNAME_MAX || name.contains('/') || name.contains('\0') {
        return Err(no_such());
    }
    let mut req = Request::new(RTM_GETLINK, 0, &ifinfomsg(0));
    req.attr_str(IFLA_IFNAME, name);
    let reply = sock
        .dump_one("RTM_GETLINK", &req)
        .map_err(|e| match e.errno {
            Some(libc::ENODEV) | Some(libc::ENOENT) => no_such(),
            _ => e.on(format!("dev '{name}'")),
        })?;
    let index = reply
        .payload
        .get(4..8)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .filter(|&i| i > 0)
        .ok_or_else(no_such)?;
    Ok(index as u32)
}

/// The name of the interface with `index`.
pub fn ifname(sock: &Socket, index: u32) -> Result<String> {
    let req = Request::new(RTM_GETLINK, 0, &ifinfomsg(index as i32));
    let reply = sock
        .dump_one("RTM_GETLINK", &req)
        .map_err(|e| match e.errno {
            Some(libc::ENODEV) | Some(libc::ENOENT) => Error::with_message(
                "find device",
                libc::ENODEV,
                format!("no device with index {index}"),
            ),
            _ => e,
        })?;
    reply
        .payload
        .get(16..)
        .and_then(|attrs| Attrs(attrs).get(IFLA_IFNAME))
        .map(|a| a.string())
        .ok_or_else(|| Error::with_message("RTM_GETLINK", libc::EIO, "reply without a name"))
}
