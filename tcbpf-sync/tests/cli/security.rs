//! `tcbpf sync` against an etcd that wants TLS with client certificates
//! (certificates made by the test with openssl), and one with users and
//! passwords (the password from a file or the environment, never the
//! command line). Refusals exit 3.

use crate::support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::etcd::{Etcd, ServerTls};
use support::host::SyncProc;
use support::{sync, sync_fails, sync_ok, BIN};
use tcbpf_testkit::{s, TempDir};

fn openssl(dir: &TempDir, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(&dir.0)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn make_certs(dir: &TempDir) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=tcbpf-test-ca",
            ],
        ]
        .concat(),
    );
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "subjectAltName=DNS:tcbpf-sync\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        openssl(
            dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "1",
                "-extfile",
                &ext,
            ],
        );
    }
}

#[test]
fn tls_with_client_certificates_puts_lists_and_follows() {
    tcbpf_testkit::require_root!();
    let certs = TempDir::new("synctls");
    make_certs(&certs);
    let e = Etcd::cluster(
        1,
        Some(ServerTls {
            ca: certs.join("ca.pem"),
            cert: certs.join("server.pem"),
            key: certs.join("server.key"),
            client_auth: true,
        }),
    );
    let ep = e.endpoints();
    let (ca, cert, key) = (
        certs.join("ca.pem"),
        certs.join("client.pem"),
        certs.join("client.key"),
    );
    let tls = ["cacert", s(&ca), "cert", s(&cert), "key", s(&key)];
    let put = |port: &str| -> std::process::Output {
        sync(
            &[
                &["put", &ep][..],
                &tls,
                &["prefix", "/t/tls", "map", "m", "key", port, "value", "1"],
            ]
            .concat(),
        )
    };
    // The first request may meet a member still electing itself.
    let t0 = Instant::now();
    while !put("1").status.success() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{}",
            String::from_utf8_lossy(&put("1").stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = sync_ok(&[&["list", &ep][..], &tls, &["prefix", "/t/tls"]].concat());
    assert_eq!(list, "m key 1 value 1\n");

    // Without a client certificate, or trusting another CA: refused, at
    // once (a TLS refusal is not retried as an election would be).
    let t0 = std::time::Instant::now();
    let err = sync_fails(4, &["list", &ep, "cacert", s(&ca), "prefix", "/t/tls"]);
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert!(
        err.contains("etcd https://127.0.0.1") || err.contains("read /t/tls/maps/"),
        "{err}"
    );
    let err = sync_fails(
        4,
        &[
            "list",
            &ep,
            "cacert",
            s(&certs.join("server.pem")),
            "cert",
            s(&cert),
            "key",
            s(&key),
            "prefix",
            "/t/tls",
        ],
    );
    assert!(!err.is_empty());
    let err = sync_fails(
        2,
        &[
            "list",
            &ep,
            "cacert",
            "/nonexistent/ca.pem",
            "prefix",
            "/t/tls",
        ],
    );
    assert!(err.contains("cacert /nonexistent/ca.pem"), "{err}");

    // The follower over TLS: a two-entry map (no BTF), by id.
    let map = tcbpf_testkit::hash_map(&format!("st{}", tcbpf_testkit::next_id()), 2, 1, 4);
    let id = tcbpf::sys::info::map_info(&map).unwrap().id.to_string();
    let _f = SyncProc::start(
        &[
            &["etcd", &ep][..],
            &tls,
            &["prefix", "/t/tls", "id", &id, "as", "m", "node", "tls1"],
        ]
        .concat(),
        certs.join("f.log"),
    );
    assert!(put("2").status.success());
    let t0 = Instant::now();
    while tcbpf::maps::read_all(&map).unwrap().len() != 2 {
        assert!(t0.elapsed() < Duration::from_secs(10), "follower over TLS");
        std::thread::sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    loop {
        let st = sync_ok(&[&["-j", "status", &ep][..], &tls, &["prefix", "/t/tls"]].concat());
        if st.contains("\"node\":\"tls1\"") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no status over TLS: {st}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn users_and_passwords_from_file_or_environment_and_refusals_exit_3() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    e.ctl(&["user", "add", "root:rootpw"]);
    e.ctl(&["user", "add", "syncer:s3cret"]);
    e.ctl(&["role", "add", "fleet"]);
    e.ctl(&[
        "role",
        "grant-permission",
        "fleet",
        "--prefix=true",
        "readwrite",
        "/t/auth/",
    ]);
    e.ctl(&["user", "grant-role", "syncer", "fleet"]);
    e.ctl(&["auth", "enable"]);
    let dir = TempDir::new("syncauth");
    std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
    std::fs::write(dir.join("bad"), "nope\n").unwrap();
    let pw = dir.join("pw");

    sync_ok(&[
        "put",
        &ep,
        "user",
        "syncer",
        "password-file",
        s(&pw),
        "prefix",
        "/t/auth",
        "map",
        "m",
        "key",
        "1",
        "value",
        "2",
    ]);
    let o = Command::new(BIN)
        .args([
            "get", &ep, "user", "syncer", "prefix", "/t/auth", "map", "m", "key", "1",
        ])
        .env("TCBPF_SYNC_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "2");

    // The follower as that user: it reads the policy and keeps its status.
    let map = tcbpf_testkit::hash_map(&format!("sa{}", tcbpf_testkit::next_id()), 2, 1, 4);
    let id = tcbpf::sys::info::map_info(&map).unwrap().id.to_string();
    let _f = SyncProc::start(
        &[
            "etcd",
            &ep,
            "user",
            "syncer",
            "password-file",
            s(&pw),
            "prefix",
            "/t/auth",
            "id",
            &id,
            "as",
            "m",
            "node",
            "a1",
        ],
        dir.join("f.log"),
    );
    let t0 = Instant::now();
    loop {
        let st = sync_ok(&[
            "-j",
            "status",
            &ep,
            "user",
            "syncer",
            "password-file",
            s(&pw),
            "prefix",
            "/t/auth",
        ]);
        if st.contains("\"node\":\"a1\"") && tcbpf::maps::read_all(&map).unwrap().len() == 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "follower with a user: {st}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let err = sync_fails(
        3,
        &[
            "list",
            &ep,
            "user",
            "syncer",
            "password-file",
            s(&dir.join("bad")),
            "prefix",
            "/t/auth",
        ],
    );
    assert!(err.contains("authentication failed"), "{err}");
    let err = sync_fails(
        3,
        &[
            "list",
            &ep,
            "user",
            "syncer",
            "password-file",
            s(&pw),
            "prefix",
            "/t/other",
        ],
    );
    assert!(err.contains("permission denied"), "{err}");
    let err = sync_fails(3, &["list", &ep, "prefix", "/t/auth"]);
    assert!(
        err.contains("user name is empty") || err.contains("permission denied"),
        "{err}"
    );
}
