//! `tcbpf prog show [ id N | pinned PATH ]`: what the kernel says about
//! loaded programs — name, type, tag, map ids, BTF id, sizes, the run
//! count and time when statistics are on — and where they are attached on
//! the namespace's devices (`net show`'s listing). `-j` uses bpftool's
//! field names and types, plus `attached`. Read-only.

use super::error::CliError;
use super::net::{self, Attached, Point};
use super::output::Global;
use super::words::{keywords, Words};
use serde_json::{json, Value};
use std::path::PathBuf;
use tcbpf::abi::ProgType;
use tcbpf::sys::{self, info::ProgInfo};
use tcbpf::tc::Socket;

/// Usage of `tcbpf prog`, printed by `tcbpf prog help`.
pub const USAGE: &str = "\
Usage: tcbpf [-j] [-n NETNS] prog show [ id N | pinned PATH ]
       tcbpf prog help

  Without a program, every loaded program. run_cnt and run_time_ns are
  counted only while statistics are on (sysctl kernel.bpf_stats_enabled=1).
";

keywords! {
    /// The verbs of `tcbpf prog`.
    pub(crate) enum ProgVerb("prog command") {
        Show = "show" | "list",
    }
}

keywords! {
    /// Which program `prog show` shows.
    pub(crate) enum Which("program") {
        Id = "id",
        Pinned = "pinned",
    }
}

/// Runs `tcbpf prog …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    if w.peek().is_none() || w.help_ahead() {
        return Err(CliError::help());
    }
    match ProgVerb::choose(&w.expect("a prog command")?)? {
        ProgVerb::Show => {
            let one = match w.next() {
                None => None,
                Some(word) => Some(match Which::choose(&word)? {
                    Which::Id => {
                        let id: u32 = w.number("a program id after 'id'")?;
                        let fd = sys::obj::prog_by_id(id)
                            .map_err(|e| CliError::from(e).context(format!("prog id {id}")))?;
                        Prog::read(&fd)?
                    }
                    Which::Pinned => {
                        let path = PathBuf::from(w.expect("a PATH after 'pinned'")?);
                        let fd = sys::obj::get_pinned_prog(&path).map_err(|e| {
                            CliError::from(e).context(format!("pinned '{}'", path.display()))
                        })?;
                        Prog::read(&fd)?
                    }
                }),
            };
            w.finish()?;
            show(g, one)
        }
    }
}

/// One program as `prog show` prints it: its info and what its
/// descriptor's fdinfo adds.
struct Prog {
    info: ProgInfo,
    /// `memlock:` (bpftool's `bytes_memlock`).
    memlock: Option<u64>,
}

impl Prog {
    fn read(fd: &sys::ProgFd) -> Result<Prog, CliError> {
        Ok(Prog {
            info: sys::info::prog_info(fd)?,
            memlock: sys::info::prog_memlock(fd)?,
        })
    }
}

fn show(g: &Global, one: Option<Prog>) -> Result<(), CliError> {
    let single = one.is_some();
    let progs = match one {
        Some(p) => vec![p],
        None => all()?,
    };
    let sock = Socket::open()?;
    let attached = net::attachments(&sock, None)?;
    let at = |id: u32| -> Vec<&Attached> { attached.iter().filter(|a| a.prog_id == id).collect() };
    if g.json {
        // One program asked for: its object, as bpftool; else an array.
        let holders = sys::info::prog_holders();
        let mut list: Vec<Value> = progs
            .iter()
            .map(|p| {
                let pids = holders.get(&p.info.id).map_or(&[][..], Vec::as_slice);
                to_json(p, pids, &at(p.info.id))
            })
            .collect();
        let out = match list.pop() {
            Some(v) if single => v,
            Some(v) => {
                list.push(v);
                Value::Array(list)
            }
            None => Value::Array(list),
        };
        return g.print_json(&out).map_err(CliError::from);
    }
    let mut text = String::new();
    for p in &progs {
        text.push_str(&to_text(&p.info, &at(p.info.id)));
    }
    print!("{text}");
    Ok(())
}

/// Every loaded program, by id; one that goes away meanwhile is skipped.
fn all() -> Result<Vec<Prog>, CliError> {
    let mut out = Vec::new();
    let mut id = 0;
    while let Some(next) = sys::obj::next_prog_id(id)? {
        id = next;
        let Ok(fd) = sys::obj::prog_by_id(id) else {
            continue;
        };
        if let Ok(p) = Prog::read(&fd) {
            out.push(p);
        }
    }
    Ok(out)
}

fn type_name(p: &ProgInfo) -> String {
    ProgType::from_u32(p.prog_type)
        .map_or_else(|| p.prog_type.to_string(), |t| t.name().to_string())
}

fn where_json(a: &Attached) -> Value {
    let mut v = json!({ "devname": a.devname, "ifindex": a.ifindex, "kind": a.point.kind() });
    match &a.point {
        Point::Xdp { link_id, .. } | Point::Tcx { link_id, .. } if *link_id != 0 => {
            v["link_id"] = json!(link_id);
        }
        Point::Clsact { pref, handle, .. } => {
            v["pref"] = json!(pref);
            v["handle"] = json!(handle);
        }
        _ => {}
    }
    v
}

/// bpftool's fields in bpftool's order (`run_time_ns`/`run_cnt` only when
/// counted, `loaded_at` with `uid`, `bytes_memlock` when fdinfo says it,
/// `map_ids`, `btf_id` and `pids` only when there are some), then
/// `attached`.
fn to_json(prog: &Prog, pids: &[sys::info::Holder], at: &[&Attached]) -> Value {
    let p = &prog.info;
    let mut v = json!({
        "id": p.id,
        "type": type_name(p),
        "name": p.name,
        "tag": p.tag_hex(),
        "gpl_compatible": p.gpl_compatible,
    });
    if p.run_time_ns != 0 || p.run_cnt != 0 {
        v["run_time_ns"] = json!(p.run_time_ns);
        v["run_cnt"] = json!(p.run_cnt);
    }
    if p.load_time != 0 {
        v["loaded_at"] = json!(sys::frontend::boot_time_to_epoch_secs(p.load_time));
    }
    v["uid"] = json!(p.created_by_uid);
    v["bytes_xlated"] = json!(p.bytes_xlated);
    v["jited"] = json!(p.jited);
    if p.jited {
        v["bytes_jited"] = json!(p.bytes_jited);
    }
    if let Some(memlock) = prog.memlock {
        v["bytes_memlock"] = json!(memlock);
    }
    if !p.map_ids.is_empty() {
        v["map_ids"] = json!(p.map_ids);
    }
    if p.btf_id != 0 {
        v["btf_id"] = json!(p.btf_id);
    }
    if !pids.is_empty() {
        v["pids"] = pids
            .iter()
            .map(|h| json!({"pid": h.pid, "comm": h.comm}))
            .collect();
    }
    v["attached"] = Value::Array(at.iter().map(|a| where_json(a)).collect());
    v
}

/// bpftool's text: `ID: TYPE  name NAME  tag TAG  gpl`, then the sizes,
/// maps and BTF, the run statistics, and one line per attach point.
fn to_text(p: &ProgInfo, at: &[&Attached]) -> String {
    let mut s = format!(
        "{}: {}  name {}  tag {}",
        p.id,
        type_name(p),
        p.name,
        p.tag_hex()
    );
    if p.gpl_compatible {
        s += "  gpl";
    }
    if p.run_time_ns != 0 || p.run_cnt != 0 {
        s += &format!(" run_time_ns {} run_cnt {}", p.run_time_ns, p.run_cnt);
    }
    s += &format!("\n\tuid {}  xlated {}B", p.created_by_uid, p.bytes_xlated);
    if p.jited {
        s += &format!("  jited {}B", p.bytes_jited);
    } else {
        s += "  not jited";
    }
    if !p.map_ids.is_empty() {
        let ids: Vec<String> = p.map_ids.iter().map(u32::to_string).collect();
        s += &format!("  map_ids {}", ids.join(","));
    }
    if p.btf_id != 0 {
        s += &format!("\n\tbtf_id {}", p.btf_id);
    }
    for a in at {
        s += &format!(
            "\n\tattached {}({}) {}",
            a.devname,
            a.ifindex,
            a.point.kind()
        );
    }
    s.push('\n');
    s
}
