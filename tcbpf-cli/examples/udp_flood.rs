//! A UDP flood for the benchmarks (`scripts/bench-events.sh`): sends N
//! 8-byte datagrams to ADDR:PORT as fast as one socket can, then prints
//! `sent N in S s (R/s)`. Std only; run it inside the sender's namespace.
//!   udp_flood ADDR:PORT N

use std::net::UdpSocket;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(to), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: udp_flood ADDR:PORT N");
        std::process::exit(2);
    };
    let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
    s.connect(to).expect("connect");
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < n {
        // ICMP port unreachable answers make a connected socket report
        // ECONNREFUSED on a later send: that datagram is not counted, so
        // try again.
        if s.send(b"packet 0").is_ok() {
            sent += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("sent {sent} in {secs:.3} s ({:.0}/s)", sent as f64 / secs);
}
