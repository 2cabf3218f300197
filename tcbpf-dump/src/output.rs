//! Where records go: tcpdump-style lines (`12:00:01.000001 va ingress
//! prog 41 count_proto: IP … -> TC_ACT_SHOT`), JSON lines (`-j`) or pcapng
//! (`w FILE`, `w -`), with the program, its position, the verdict by name,
//! mark and priority before and after, and the redirect target.

use crate::args::Args;
use crate::decode;
use crate::pcapng;
use serde_json::json;
use std::fs::File;
use std::io::{self, BufWriter, Stdout, Write};
use tcbpf::tc::{device, Socket};
use tcbpf::trace::{verdict_name, Event, Target};

/// Device names by ifindex, asked once each.
pub struct IfNames<'a> {
    sock: &'a Socket,
    known: Vec<(u32, String)>,
}

impl<'a> IfNames<'a> {
    pub fn new(sock: &'a Socket) -> IfNames<'a> {
        IfNames {
            sock,
            known: Vec::new(),
        }
    }

    pub fn name(&mut self, ifindex: u32) -> String {
        if let Some((_, n)) = self.known.iter().find(|(i, _)| *i == ifindex) {
            return n.clone();
        }
        let n = device::ifname(self.sock, ifindex).unwrap_or_else(|_| format!("if{ifindex}"));
        self.known.push((ifindex, n.clone()));
        n
    }
}

/// What one record says about the program, in words (text, comment, JSON).
struct Said {
    dev: String,
    direction: &'static str,
    position: Option<usize>,
    verdict: String,
    redirect: Option<String>,
}

fn said(e: &Event<'_>, t: &Target, names: &mut IfNames<'_>) -> Said {
    Said {
        dev: names.name(e.ifindex),
        direction: if e.ingress { "ingress" } else { "egress" },
        position: t.place(e.ingress).map(|p| p.position),
        verdict: if t.classid_verdict {
            format!("classid:{}", e.verdict)
        } else {
            verdict_name(e.verdict)
        },
        redirect: (e.redirect_ifindex != 0).then(|| names.name(e.redirect_ifindex)),
    }
}

/// `HH:MM:SS.uuuuuu` (UTC) of a time in nanoseconds since the epoch.
pub fn clock_time(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        day / 3600,
        day / 60 % 60,
        day % 60,
        ns % 1_000_000_000 / 1000
    )
}

/// One tcpdump-style line: time, device, direction, position, program,
/// the packet, then the verdict (and the mark when it changed, the
/// redirect target).
fn text_line(e: &Event<'_>, t: &Target, s: &Said, time_ns: u64) -> String {
    let pos = s.position.map_or(String::new(), |p| format!(" #{p}"));
    let mut extra = String::new();
    if e.mark.0 != e.mark.1 {
        extra.push_str(&format!(" mark {:#x}->{:#x}", e.mark.0, e.mark.1));
    }
    if let Some(r) = &s.redirect {
        extra.push_str(&format!(" to {r}"));
    }
    format!(
        "{} {} {}{pos} prog {} {}: {} -> {}{extra}",
        clock_time(time_ns),
        s.dev,
        s.direction,
        t.info.id,
        t.info.name,
        decode::summary(e.data, e.len),
        s.verdict
    )
}

/// One JSON object (`-j`).
fn json_line(e: &Event<'_>, t: &Target, s: &Said, time_ns: u64) -> serde_json::Value {
    json!({
        "time_ns": time_ns,
        "dev": s.dev,
        "ifindex": e.ifindex,
        "direction": s.direction,
        "prog": {
            "id": t.info.id,
            "name": t.info.name,
            "tag": t.info.tag_hex(),
            "position": s.position,
        },
        "len": e.len,
        "caplen": e.data.len(),
        "summary": decode::summary(e.data, e.len),
        "verdict": e.verdict,
        "verdict_name": s.verdict,
        "mark": { "before": e.mark.0, "after": e.mark.1 },
        "priority": { "before": e.priority.0, "after": e.priority.1 },
        "redirect_ifindex": e.redirect_ifindex,
        "redirect_dev": s.redirect,
        "data": e.data.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    })
}

/// The pcapng comment of a record.
fn comment(e: &Event<'_>, t: &Target, s: &Said) -> String {
    format!(
        "prog={} name={} tag={} position={} dev={} direction={} verdict={} mark={:#x}->{:#x} priority={}->{} redirect={}",
        t.info.id,
        t.info.name,
        t.info.tag_hex(),
        s.position.map_or("-".to_string(), |p| p.to_string()),
        s.dev,
        s.direction,
        s.verdict,
        e.mark.0,
        e.mark.1,
        e.priority.0,
        e.priority.1,
        s.redirect.as_deref().unwrap_or("-"),
    )
}

pub enum Out {
    Stdout(BufWriter<Stdout>),
    File(BufWriter<File>),
}

impl Write for Out {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Out::Stdout(w) => w.write(b),
            Out::File(w) => w.write(b),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Stdout(w) => w.flush(),
            Out::File(w) => w.flush(),
        }
    }
}

/// The output of a dump.
pub enum Sink {
    Text(Out),
    Json(Out),
    Pcapng {
        writer: pcapng::Writer<Out>,
        snaplen: u32,
        to_stdout: bool,
    },
}

impl Sink {
    pub fn open(a: &Args, _targets: &[Target]) -> io::Result<Sink> {
        let stdout = || Out::Stdout(BufWriter::new(io::stdout()));
        Ok(match a.write.as_deref() {
            Some(path) => {
                let to_stdout = path == "-";
                let out = if to_stdout {
                    stdout()
                } else {
                    Out::File(BufWriter::new(File::create(path).map_err(|e| {
                        io::Error::new(e.kind(), format!("w {path}: {e}"))
                    })?))
                };
                let mut writer = pcapng::Writer::new(out)?;
                writer.flush()?;
                Sink::Pcapng {
                    writer,
                    snaplen: a.snaplen,
                    to_stdout,
                }
            }
            None if a.json => Sink::Json(stdout()),
            None => Sink::Text(stdout()),
        })
    }

    /// True when the records go to stdout (a closed pipe ends the dump).
    pub fn on_stdout(&self) -> bool {
        match self {
            Sink::Text(o) | Sink::Json(o) => matches!(o, Out::Stdout(_)),
            Sink::Pcapng { to_stdout, .. } => *to_stdout,
        }
    }

    pub fn write(
        &mut self,
        e: &Event<'_>,
        t: &Target,
        time_ns: u64,
        names: &mut IfNames<'_>,
    ) -> io::Result<()> {
        let s = said(e, t, names);
        match self {
            Sink::Text(out) => writeln!(out, "{}", text_line(e, t, &s, time_ns)),
            Sink::Json(out) => writeln!(out, "{}", json_line(e, t, &s, time_ns)),
            Sink::Pcapng {
                writer, snaplen, ..
            } => {
                let iface = writer.interface(&format!("{} {}", s.dev, s.direction), *snaplen)?;
                writer.packet(iface, time_ns, e.data, e.len, &comment(e, t, &s))
            }
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Text(o) | Sink::Json(o) => o.flush(),
            Sink::Pcapng { writer, .. } => writer.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcbpf::attach::discover::Hook;
    use tcbpf::attach::tcx::Direction;
    use tcbpf::sys::info::ProgInfo;
    use tcbpf::trace::Place;

    fn udp4() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        f.extend_from_slice(&[
            0x45, 0, 0, 128, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ]);
        f.extend_from_slice(&[0x14, 0xe9, 0x10, 0x92, 0, 108, 0, 0]);
        f
    }

    fn target() -> Target {
        Target {
            info: ProgInfo {
                prog_type: 3,
                id: 41,
                tag: [1, 2, 3, 4, 5, 6, 7, 8],
                name: "count_proto".into(),
                map_ids: Vec::new(),
                jited: true,
                bytes_xlated: 0,
                bytes_jited: 0,
                gpl_compatible: true,
                btf_id: 1,
                main_func_type_id: 2,
                load_time: 0,
                created_by_uid: 0,
                run_time_ns: 0,
                run_cnt: 0,
            },
            places: vec![Place {
                direction: Direction::Ingress,
                position: 2,
                hook: Hook::Tcx { link_id: 9 },
            }],
            classid_verdict: false,
        }
    }

    fn said_of(e: &Event<'_>, t: &Target, redirect: Option<&str>) -> Said {
        Said {
            dev: "va".into(),
            direction: if e.ingress { "ingress" } else { "egress" },
            position: t.place(e.ingress).map(|p| p.position),
            verdict: verdict_name(e.verdict),
            redirect: redirect.map(str::to_string),
        }
    }

    #[test]
    fn text_json_and_comment_say_the_same_things() {
        let data = udp4();
        let e = Event {
            ktime_ns: 0,
            target: 0,
            len: 142,
            ifindex: 3,
            ingress: true,
            mark: (0, 42),
            priority: (0, 0),
            verdict: 2,
            redirect_ifindex: 0,
            data: &data,
        };
        let t = target();
        let s = said_of(&e, &t, None);
        assert_eq!(
            text_line(&e, &t, &s, 43_201_000_001_000),
            "12:00:01.000001 va ingress #2 prog 41 count_proto: IP 10.0.0.2.5353 > 10.0.0.1.4242: UDP, length 100 -> TC_ACT_SHOT mark 0x0->0x2a"
        );
        let j = json_line(&e, &t, &s, 7);
        assert_eq!(j["prog"]["position"], 2);
        assert_eq!(j["verdict_name"], "TC_ACT_SHOT");
        assert_eq!(j["mark"]["after"], 42);
        assert_eq!(j["caplen"], 42);
        assert_eq!(
            comment(&e, &t, &s),
            "prog=41 name=count_proto tag=0102030405060708 position=2 dev=va direction=ingress verdict=TC_ACT_SHOT mark=0x0->0x2a priority=0->0 redirect=-"
        );
        let r = Event {
            verdict: 7,
            redirect_ifindex: 5,
            ingress: false,
            mark: (0, 0),
            ..e
        };
        let s = said_of(&r, &t, Some("vb"));
        assert!(text_line(&r, &t, &s, 0).ends_with("-> TC_ACT_REDIRECT to vb"));
        assert!(comment(&r, &t, &s)
            .contains("position=- dev=va direction=egress verdict=TC_ACT_REDIRECT"));
        assert!(comment(&r, &t, &s).ends_with("redirect=vb"));
    }

    #[test]
    fn clock_time_is_utc_microseconds() {
        assert_eq!(clock_time(43_201_000_001_999), "12:00:01.000001");
    }
}
