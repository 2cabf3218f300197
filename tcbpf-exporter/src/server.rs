//! The HTTP side of `tcbpf exporter listen`: tiny_http (a small, blocking
//! HTTP/1.1 server; no async runtime) with a few worker threads, so a long
//! scrape of a large map never holds up other requests. `GET /metrics`
//! scrapes; the format follows `Accept`. SIGINT/SIGTERM end it cleanly.

use crate::collect::Collector;
use crate::metrics::{self, OPENMETRICS_TYPE, TEXT_TYPE};
use std::sync::Arc;
use std::time::Duration;
use tcbpf::sys::frontend::interrupted;
use tiny_http::{Header, Method, Request, Response, Server};

/// Request-serving threads.
const WORKERS: usize = 4;

/// Why the server did not start.
#[derive(Debug)]
pub enum BindError {
    /// The address is taken.
    InUse(String),
    /// Anything else.
    Other(String),
}

/// Binds `addr` (a `HOST:PORT`).
pub fn bind(addr: &str) -> Result<Server, BindError> {
    Server::http(addr).map_err(|e| {
        let in_use = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse);
        if in_use {
            BindError::InUse(format!("cannot listen on {addr}: address already in use"))
        } else {
            BindError::Other(format!("cannot listen on {addr}: {e}"))
        }
    })
}

/// Serves until SIGINT or SIGTERM.
pub fn serve(server: Server, collector: Collector) {
    let server = Arc::new(server);
    let collector = Arc::new(collector);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let server = server.clone();
            let collector = collector.clone();
            std::thread::spawn(move || {
                while !interrupted() {
                    match server.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(req)) => handle(req, &collector),
                        Ok(None) => {}
                        Err(e) => {
                            eprintln!("tcbpf exporter: {e}");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

fn handle(req: Request, collector: &Collector) {
    let path = req.url().split('?').next().unwrap_or("");
    let resp = match (req.method(), path) {
        (Method::Get, "/metrics") => {
            let accept = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Accept"))
                .map(|h| h.value.as_str().to_string())
                .unwrap_or_default();
            let om = metrics::wants_openmetrics(&accept);
            let mut errors = Vec::new();
            let fams = collector.scrape(om, &mut errors);
            for e in &errors {
                eprintln!("tcbpf exporter: {e}");
            }
            let body = fams.render();
            drop(fams);
            Response::from_string(body).with_header(header(
                "Content-Type",
                if om { OPENMETRICS_TYPE } else { TEXT_TYPE },
            ))
        }
        (Method::Get, "/") => Response::from_string(
            "tcbpf exporter: the metrics of tc classifiers' maps are at /metrics\n",
        )
        .with_header(header("Content-Type", "text/plain; charset=utf-8")),
        (Method::Get, _) => {
            Response::from_string("not found; see /metrics\n").with_status_code(404)
        }
        _ => Response::from_string("only GET\n").with_status_code(405),
    };
    // A client that hung up is not the exporter's problem.
    let _ = req.respond(resp);
}
