//! The keeper as a service: socket activation as systemd does it
//! (`systemd-socket-activate`, two nested so that the import socket is a
//! datagram socket and the client socket a seqpacket one, named `import`
//! and `keeper` as the unit files in `contrib/systemd/` name them) and
//! `sd_notify` READY=1 / STOPPING=1 read from a NOTIFY_SOCKET the test
//! binds; SIGTERM ends it with exit 0.

use crate::e2e_support;
use crate::keeper_support;

use e2e_support::*;
use keeper_support::*;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn socket_activated_keeper_serves_on_the_passed_sockets_and_notifies_ready_and_stopping() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("kact");
    let sock = dir.join("k");
    let import = dir.join("k.import");
    let notify = UnixDatagram::bind(dir.join("notify")).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let child = Command::new("systemd-socket-activate")
        .args(["-E", "NOTIFY_SOCKET", "-d", "-l"])
        .arg(&import)
        .args(["--fdname=import", "systemd-socket-activate"])
        .args(["-E", "NOTIFY_SOCKET", "--seqpacket", "-l"])
        .arg(&sock)
        .args(["--fdname=import:keeper", TCBPF, "keeper"])
        .arg(&sock)
        .env("NOTIFY_SOCKET", dir.join("notify"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate (package systemd)");
    struct Kill(Option<std::process::Child>);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(c) = &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut guard = Kill(Some(child));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !import.exists() {
        assert!(Instant::now() < deadline, "import socket never bound");
        std::thread::sleep(Duration::from_millis(5));
    }
    // A first datagram starts the chain, as it starts a socket-activated
    // service. It was sent before anyone set SO_PASSCRED on the socket
    // (systemd sets it at bind with PassCredentials=yes, as the unit file
    // asks; systemd-socket-activate cannot), so it carries no credentials
    // and the keeper drops it.
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"wake up", &import)
        .unwrap();
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).expect("READY=1 from the keeper");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("READY=1\nSTATUS="), "{msg}");
    assert!(sock.exists(), "client socket bound by the activator");
    let k = KeeperHandle {
        sock: sock.clone(),
        import: import.clone(),
    };
    let name = format!("ka{}", next_id());
    let (m, id) = counter_hash(&name, 1, 9);
    k.export_map(id, "act.o");
    drop(m);
    let got = ok(tcbpf_cmd(&[
        "map",
        "lookup",
        "keeper",
        sock.to_str().unwrap(),
        &format!("act.o/{name}"),
        "key",
        "u32",
        "1",
        "value",
        "u64",
    ]));
    assert_eq!(got.trim(), "key: 1  value: 9");

    // SIGTERM: STOPPING=1, exit 0, and the sockets systemd bound are left
    // to systemd.
    // SAFETY: kill(2) on our own child, which exec'd into the keeper.
    let mut child = guard.0.take().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let n = notify.recv(&mut buf).expect("STOPPING=1 from the keeper");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let status = child.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("tcbpf keeper: ready on"), "{err}");
    assert!(sock.exists() && import.exists());
}
