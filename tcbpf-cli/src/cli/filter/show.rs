//! `filter show` output: the lines `tc filter show` (iproute2 6.1) prints
//! for bpf filters, word for word, and the JSON of `tc -j filter show`.
//! Fields the command line already fixed (pref, protocol, chain) are left
//! out, as tc does. Pure formatting: program details come in from the caller.

use serde_json::{json, Map, Value};
use tcbpf::attach::cls_bpf::{cls_flags, FilterEntry};
use tcbpf::tc::classic::format_bytecode;

/// What the command line fixed, so the output leaves it out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given {
    /// `pref N` was given.
    pub pref: bool,
    /// `protocol P` was given.
    pub protocol: bool,
    /// `chain N` was given.
    pub chain: bool,
    /// `-d`: print the program's load time, creator and BTF id, as `tc -d`.
    pub details: bool,
}

/// A program's details as `tc` prints them after `id N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgDetails {
    /// The kernel's program name.
    pub name: String,
    /// The tag, 16 hex digits.
    pub tag: String,
    /// True when the program is JIT-compiled.
    pub jited: bool,
    /// Load time, nanoseconds since boot (0: unknown).
    pub load_time: u64,
    /// The uid that loaded it.
    pub created_by_uid: u32,
    /// Its BTF object (0: none).
    pub btf_id: u32,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One entry as tc's text line (with the trailing space tc leaves, no newline).
pub fn text_line(
    e: &FilterEntry,
    given: Given,
    details: &dyn Fn(u32) -> Option<ProgDetails>,
) -> String {
    let mut s = String::from("filter ");
    if e.protocol.0 != 0 && !given.protocol {
        s += &format!("protocol {} ", e.protocol);
    }
    if e.pref != 0 && !given.pref {
        s += &format!("pref {} ", e.pref);
    }
    s += &format!("{} ", e.kind);
    if let Some(chain) = e.chain.filter(|_| !given.chain) {
        s += &format!("chain {chain} ");
    }
    let Some(o) = &e.bpf else {
        return s;
    };
    if e.handle != 0 {
        s += &format!("handle {:#x} ", e.handle);
    }
    if let Some(c) = o.classid {
        s += &format!("flowid {c} ");
    }
    if let Some(name) = &o.name {
        s += &format!("{name} ");
    }
    if o.direct_action {
        s += "direct-action ";
    }
    if let Some(f) = o.flags_gen {
        for (bit, word) in [
            (cls_flags::SKIP_HW, "skip_hw"),
            (cls_flags::SKIP_SW, "skip_sw"),
        ] {
            if f & bit != 0 {
                s += &format!("{word} ");
            }
        }
        if f & cls_flags::IN_HW != 0 {
            s += "in_hw ";
        } else if f & cls_flags::NOT_IN_HW != 0 {
            s += "not_in_hw ";
        }
    }
    if let Some(insns) = &o.classic {
        s += &format!("bytecode '{}'", format_bytecode(insns));
    }
    let mut shown = false;
    if let Some(id) = o.prog_id {
        s += &format!("id {id} ");
        if let Some(d) = details(id) {
            s += &format!("name {} tag {} ", d.name, d.tag);
            if d.jited {
                s += "jited ";
            }
            if given.details {
                if d.load_time != 0 {
                    s += &format!(
                        "load_time {} created_by_uid {} ",
                        d.load_time, d.created_by_uid
                    );
                }
                if d.btf_id != 0 {
                    s += &format!("btf_id {} ", d.btf_id);
                }
            }
            shown = true;
        }
    }
    if !shown {
        if let Some(tag) = &o.tag {
            s += &format!("tag {} ", hex(tag));
        }
    }
    s
}

/// One entry as an element of `tc -j filter show`'s array.
pub fn json_entry(
    e: &FilterEntry,
    given: Given,
    details: &dyn Fn(u32) -> Option<ProgDetails>,
) -> Value {
    let mut m = Map::new();
    if e.protocol.0 != 0 && !given.protocol {
        m.insert("protocol".into(), json!(e.protocol.to_string()));
    }
    if e.pref != 0 && !given.pref {
        m.insert("pref".into(), json!(e.pref));
    }
    m.insert("kind".into(), json!(e.kind));
    if let Some(chain) = e.chain.filter(|_| !given.chain) {
        m.insert("chain".into(), json!(chain));
    }
    let Some(o) = &e.bpf else {
        return Value::Object(m);
    };
    let mut opt = Map::new();
    if e.handle != 0 {
        opt.insert("handle".into(), json!(format!("{:#x}", e.handle)));
    }
    if let Some(c) = o.classid {
        opt.insert("flowid".into(), json!(c.to_string()));
    }
    if let Some(name) = &o.name {
        opt.insert("bpf_name".into(), json!(name));
    }
    if o.direct_action {
        opt.insert("direct-action".into(), json!(true));
    }
    if let Some(f) = o.flags_gen {
        for (bit, word) in [
            (cls_flags::SKIP_HW, "skip_hw"),
            (cls_flags::SKIP_SW, "skip_sw"),
        ] {
            if f & bit != 0 {
                opt.insert(word.into(), json!(true));
            }
        }
        if f & cls_flags::IN_HW != 0 {
            opt.insert("in_hw".into(), json!(true));
        } else if f & cls_flags::NOT_IN_HW != 0 {
            opt.insert("not_in_hw".into(), json!(true));
        }
    }
    if let Some(insns) = &o.classic {
        let list: Vec<Value> = insns
            .iter()
            .map(|i| json!({ "code": i.code, "jt": i.jt, "jf": i.jf, "k": i.k }))
            .collect();
        opt.insert(
            "bytecode".into(),
            json!({ "length": insns.len(), "insns": list }),
        );
    }
    let mut shown = false;
    if let Some(id) = o.prog_id {
        let mut prog = Map::new();
        prog.insert("id".into(), json!(id));
        if let Some(d) = details(id) {
            prog.insert("name".into(), json!(d.name));
            prog.insert("tag".into(), json!(d.tag));
            prog.insert("jited".into(), json!(d.jited as u32));
            if given.details {
                if d.load_time != 0 {
                    prog.insert("load_time".into(), json!(d.load_time));
                    prog.insert("created_by_uid".into(), json!(d.created_by_uid));
                }
                if d.btf_id != 0 {
                    prog.insert("btf_id".into(), json!(d.btf_id));
                }
            }
            shown = true;
        }
        opt.insert("prog".into(), Value::Object(prog));
    }
    if !shown {
        if let Some(tag) = &o.tag {
            opt.insert("tag".into(), json!(hex(tag)));
        }
    }
    m.insert("options".into(), Value::Object(opt));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcbpf::attach::cls_bpf::BpfOptions;
    use tcbpf::tc::{Protocol, TcHandle};

    fn entry(handle: u32) -> FilterEntry {
        FilterEntry {
            ifindex: 2,
            parent: TcHandle::INGRESS,
            pref: 49152,
            protocol: Protocol::ALL,
            kind: "bpf".into(),
            chain: Some(0),
            handle,
            bpf: (handle != 0).then(|| BpfOptions {
                name: Some("demo.o:[classifier]".into()),
                direct_action: true,
                classid: None,
                flags_gen: Some(cls_flags::NOT_IN_HW),
                prog_id: Some(100),
                tag: Some(vec![0x38, 0x2e, 0x13, 0xed, 0x7b, 0x41, 0xb8, 0x3b]),
                has_actions: false,
                classic: None,
            }),
        }
    }

    fn details(_: u32) -> Option<ProgDetails> {
        Some(ProgDetails {
            name: "count_proto".into(),
            tag: "382e13ed7b41b83b".into(),
            jited: true,
            load_time: 842009619431,
            created_by_uid: 0,
            btf_id: 379,
        })
    }

    #[test]
    fn details_add_what_tc_d_adds() {
        let d = Given {
            details: true,
            ..Default::default()
        };
        assert!(text_line(&entry(1), d, &details)
            .ends_with("jited load_time 842009619431 created_by_uid 0 btf_id 379 "));
        assert!(json_entry(&entry(1), d, &details)
            .to_string()
            .ends_with(r#""jited":1,"load_time":842009619431,"created_by_uid":0,"btf_id":379}}}"#));
    }

    #[test]
    fn classic_programs_show_their_bytecode_as_tc() {
        let mut e = entry(1);
        let o = e.bpf.as_mut().unwrap();
        (o.name, o.prog_id, o.tag) = (None, None, None);
        o.classic =
            Some(tcbpf::tc::classic::parse_bytecode("2,40 0 0 12,6 0 0 4294967295").unwrap());
        assert_eq!(
            text_line(&e, Given::default(), &details),
            "filter protocol all pref 49152 bpf chain 0 handle 0x1 direct-action not_in_hw bytecode '2,40 0 0 12,6 0 0 4294967295'"
        );
        assert_eq!(
            json_entry(&e, Given::default(), &details)["options"]["bytecode"].to_string(),
            r#"{"length":2,"insns":[{"code":40,"jt":0,"jf":0,"k":12},{"code":6,"jt":0,"jf":0,"k":4294967295}]}"#
        );
    }

    #[test]
    fn text_matches_tc_lines() {
        assert_eq!(
            text_line(&entry(0), Given::default(), &details),
            "filter protocol all pref 49152 bpf chain 0 "
        );
        assert_eq!(
            text_line(&entry(1), Given::default(), &details),
            "filter protocol all pref 49152 bpf chain 0 handle 0x1 demo.o:[classifier] direct-action not_in_hw id 100 name count_proto tag 382e13ed7b41b83b jited "
        );
        let given = Given {
            pref: true,
            ..Default::default()
        };
        assert!(
            text_line(&entry(0), given, &details).starts_with("filter protocol all bpf chain 0")
        );
        assert!(text_line(&entry(1), Given::default(), &|_| None)
            .ends_with("id 100 tag 382e13ed7b41b83b "));
    }

    #[test]
    fn json_matches_tc_json() {
        let v = json!([
            json_entry(&entry(0), Given::default(), &details),
            json_entry(&entry(1), Given::default(), &details)
        ]);
        assert_eq!(
            v.to_string(),
            r#"[{"protocol":"all","pref":49152,"kind":"bpf","chain":0},{"protocol":"all","pref":49152,"kind":"bpf","chain":0,"options":{"handle":"0x1","bpf_name":"demo.o:[classifier]","direct-action":true,"not_in_hw":true,"prog":{"id":100,"name":"count_proto","tag":"382e13ed7b41b83b","jited":1}}}]"#
        );
    }
}
