//! Soak driver for `scripts/soak.sh`: sends hostile datagrams to an
//! importer's socket, as a local user other than the importer's would
//! (run it under `setpriv --reuid`): garbage payloads, truncated and
//! oversized ones, well-formed headers whose counts lie, and datagrams
//! carrying descriptors (of /dev/null) the importer must close.
//!
//! ```text
//! hostile_sender PATH COUNT
//! ```
//!
//! Prints how many datagrams went out. A full receive queue just makes it
//! wait (the importer drains it); a gone importer ends it early.

use std::os::fd::AsFd;
use std::path::PathBuf;
use tcbpf::scm::{wire, MapDesc, ObjectId, Sender};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: hostile_sender PATH COUNT");
        std::process::exit(2);
    };
    let path = PathBuf::from(path);
    let count: usize = count.parse().unwrap_or(1000);
    let sender = match Sender::connect(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hostile_sender: {e}");
            std::process::exit(1);
        }
    };
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let desc = MapDesc {
        map_type: 1,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        ..Default::default()
    };
    let object = ObjectId {
        name: "hostile".into(),
        dev: 0,
        ino: 0,
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut sent = 0;
    for i in 0..count {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let garbage: Vec<u8> = (0..(seed % 400) as usize)
            .map(|j| (seed >> (j % 56)) as u8)
            .collect();
        let lying = wire::encode_chunk(&object, 7, &[desc; 3]);
        let fds = [null.as_fd(), null.as_fd(), null.as_fd()];
        let result = match i % 4 {
            0 => sender.send_raw(&garbage, &[]),
            1 => sender.send_raw(&lying, &fds),
            2 => sender.send_raw(&lying[..lying.len() / 2], &fds[..1]),
            _ => sender.send_raw(&vec![0xff; wire::MAX_DATAGRAM_LEN + 100], &fds[..2]),
        };
        match result {
            Ok(()) => sent += 1,
            Err(_) => break,
        }
    }
    println!("{sent}");
}
