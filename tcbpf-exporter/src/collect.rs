//! One scrape: find the programs on the devices asked for (cls_bpf, tcx
//! and XDP: `tcbpf::front::hooks`, as `map watch dev DEV` finds them),
//! their run statistics and the maps they use, read every map, and turn
//! rows into metric families named and labelled as docs/exporter.md says. Maps
//! given by reference are read as they are, without device labels.
//!
//! A map-in-map gives no rows: its slots' policy generations are exported
//! instead (`tcbpf_exporter_policy_generation`, read by
//! `tcbpf::maps::generation`).
//!
//! Series are named so that a reload keeps them: a map's series carry its
//! name and where it was found (`dev`, `direction`, `prog`, `attach`: the
//! filter's pref and handle, the tcx position or the XDP mode), never a
//! kernel id; the ids are on `tcbpf_prog_info` and `tcbpf_exporter_map_info`
//! only, to join on. At a map's series cap the kept keys are the smallest in byte order,
//! so the same keys stay series from one scrape to the next.
//!
//! Maps found through a device are opened read-only by id at the scrape
//! that first sees them and kept while a program still uses them; a map
//! whose program went away is closed and no longer exported.

use crate::config::{Config, Decoder, Kind};
use crate::keys::KeyPart;
use crate::metrics::{labels_text, metric_name, Families, Number, Type};
use crate::names;
use crate::read::{ReadError, StatMap};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tcbpf::attach::tcx::Direction;
use tcbpf::front::hooks::{self, Attached, Place};
use tcbpf::sys;
use tcbpf::tc::{device, Socket};

/// A device whose programs are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevTarget {
    /// The device's name.
    pub dev: String,
    /// The hooks looked at.
    pub directions: Vec<Direction>,
}

/// Everything a scrape needs; shared by the server's threads.
pub struct Collector {
    targets: Vec<DevTarget>,
    fixed: Vec<StatMap>,
    config: Config,
    found: Mutex<HashMap<u32, Arc<StatMap>>>,
}

/// Where a map was found: the labels it carries.
struct Origin {
    labels: Vec<(String, String)>,
}

/// What one scrape has exported so far: maps by kernel id (each once), and
/// the origin labels handed out (two maps of one name found alike, e.g.
/// two pins of maps named `stats`, get `copy="2"`, `"3"`… in the order
/// read, so no two series meet).
#[derive(Default)]
struct Exported {
    ids: HashSet<u32>,
    origins: HashSet<String>,
}

impl Exported {
    /// The labels of map `name` found at `origin`: `map`, the origin's,
    /// and `copy` when those were handed out already.
    fn labels(&mut self, name: &str, origin: &Origin) -> Vec<(String, String)> {
        let mut labels = vec![("map".to_string(), name.to_string())];
        labels.extend(origin.labels.iter().cloned());
        if !self.origins.insert(labels_text(&labels)) {
            let n = (2..)
                .find(|n| {
                    let mut l = labels.clone();
                    l.push(("copy".to_string(), n.to_string()));
                    self.origins.insert(labels_text(&l))
                })
                .unwrap_or(2);
            labels.push(("copy".to_string(), n.to_string()));
        }
        labels
    }
}

impl Collector {
    /// A collector of `targets`' programs and maps and of the `fixed` maps.
    pub fn new(targets: Vec<DevTarget>, fixed: Vec<StatMap>, config: Config) -> Collector {
        Collector {
            targets,
            fixed,
            config,
            found: Mutex::new(HashMap::new()),
        }
    }

    /// Reads everything now, as OpenMetrics or the text format; problems
    /// with one device or map go to `errors` (logging them is the caller's
    /// choice), the rest is still exported. Each map is exported once, by
    /// its first origin.
    pub fn scrape(&self, openmetrics: bool, errors: &mut Vec<String>) -> Families {
        let mut fams = Families::new(openmetrics);
        let own = Own::new(&mut fams);
        let mut ifnames = IfNames::default();
        let mut exported = Exported::default();
        for m in &self.fixed {
            if exported.ids.insert(m.info.id) {
                let labels = exported.labels(&m.info.name, &Origin { labels: vec![] });
                self.export_map(m, &labels, &own, &mut fams, &mut ifnames, errors);
            }
        }
        if !self.targets.is_empty() {
            self.scrape_devices(&own, &mut fams, &mut ifnames, &mut exported, errors);
        }
        fams.at(own.errors)
            .push("", Number::Int(errors.len() as i128));
        fams
    }

    fn scrape_devices(
        &self,
        own: &Own,
        fams: &mut Families,
        names: &mut IfNames,
        exported: &mut Exported,
        errors: &mut Vec<String>,
    ) {
        let mut seen_maps: HashMap<u32, Origin> = HashMap::new();
        let mut seen_progs = HashSet::new();
        let mut order = Vec::new();
        for t in &self.targets {
            // The same discovery as `map watch dev DEV`: cls_bpf, tcx, XDP.
            let attached = match hooks::attached(&t.dev, &t.directions) {
                Ok(a) => a,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            for Attached { place, prog } in attached {
                let (hook, attach, link) = match place {
                    Place::Filter { pref, handle, .. } => {
                        ("filter", format!("pref {pref} handle {handle:#x}"), None)
                    }
                    Place::Tcx {
                        position, link_id, ..
                    } => ("tcx", format!("tcx {position}"), Some(link_id)),
                    Place::Xdp { mode, link_id } => ("xdp", mode.word().to_string(), Some(link_id)),
                };
                let direction = place.direction().to_string();
                let base = vec![
                    ("dev".to_string(), t.dev.clone()),
                    ("direction".to_string(), direction.clone()),
                    ("prog".to_string(), prog.name.clone()),
                    ("attach".to_string(), attach),
                ];
                // One program attached twice on one hook: its statistics once.
                if seen_progs.insert((t.dev.clone(), direction, prog.id)) {
                    let labels = labels_text(&base);
                    fams.at(own.runs)
                        .push(&labels, Number::Int(prog.run_cnt as i128));
                    fams.at(own.run_seconds)
                        .push(&labels, Number::Float(prog.run_time_ns as f64 / 1e9));
                }
                let mut info = base.clone();
                info.push(("hook".into(), hook.into()));
                info.push(("id".into(), prog.id.to_string()));
                info.push(("tag".into(), prog.tag_hex()));
                if let Some(link) = link {
                    info.push(("link_id".into(), link.to_string()));
                }
                fams.at(own.prog_info)
                    .push(&labels_text(&info), Number::Int(1));
                for &id in &prog.map_ids {
                    if let std::collections::hash_map::Entry::Vacant(e) = seen_maps.entry(id) {
                        order.push(id);
                        e.insert(Origin {
                            labels: base.clone(),
                        });
                    }
                }
            }
        }
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: HashSet<u32> = seen_maps.keys().copied().collect();
        found.retain(|id, _| wanted.contains(id));
        let mut maps = Vec::new();
        let mut outers = Vec::new();
        for id in order {
            let m = match found.get(&id) {
                Some(m) => Some(m.clone()),
                None => match open_by_id(id) {
                    Ok(m) => {
                        let m = Arc::new(m);
                        found.insert(id, m.clone());
                        Some(m)
                    }
                    Err(ReadError::Unsupported(_)) => {
                        outers.push(id);
                        None
                    }
                    // Gone between the program's info and now: not exported.
                    Err(e) if e.is_not_found() => None,
                    Err(e) => {
                        errors.push(format!("map id {id}: {e}"));
                        None
                    }
                },
            };
            if let Some(m) = m {
                maps.push((m, id));
            }
        }
        drop(found);
        for (m, id) in maps {
            if exported.ids.insert(id) {
                let labels = exported.labels(&m.info.name, &seen_maps[&id]);
                self.export_map(&m, &labels, own, fams, names, errors);
            }
        }
        for id in outers {
            export_generations(id, &seen_maps[&id], exported, own, fams, errors);
        }
    }

    fn export_map(
        &self,
        m: &StatMap,
        origin_labels: &[(String, String)],
        own: &Own,
        fams: &mut Families,
        ifnames: &mut IfNames,
        errors: &mut Vec<String>,
    ) {
        let rule = self.config.map(&m.info.name);
        if rule.is_some_and(|r| r.skip) {
            return;
        }
        let map_labels = labels_text(origin_labels);
        let mut info = origin_labels.to_vec();
        info.push(("id".to_string(), m.info.id.to_string()));
        info.push(("type".to_string(), m.info.type_name().to_string()));
        fams.at(own.map_info)
            .push(&labels_text(&info), Number::Int(1));
        let fields = m.field_names();
        if fields.is_empty() {
            return;
        }
        let cap = rule.and_then(|r| r.cap).unwrap_or(self.config.cap);
        let map_part = rule
            .and_then(|r| r.rename.clone())
            .unwrap_or_else(|| m.info.name.clone());
        let renamed: Vec<String> = fields
            .iter()
            .map(|f| {
                let fr = rule.and_then(|r| r.fields.get(f));
                fr.and_then(|r| r.rename.clone()).unwrap_or(f.clone())
            })
            .collect();
        let parts = names::field_parts(&renamed.iter().map(String::as_str).collect::<Vec<_>>());
        let families: Vec<usize> = fields
            .iter()
            .zip(&parts)
            .map(|(f, part)| {
                let fr = rule.and_then(|r| r.fields.get(f));
                let kind = match fr.and_then(|r| r.kind) {
                    Some(Kind::Gauge) => Type::Gauge,
                    _ => Type::Counter,
                };
                let name = metric_name(&[MAP_PREFIX, &map_part, part]);
                let what = if f.is_empty() {
                    "value".to_string()
                } else {
                    format!("field '{f}'")
                };
                let help = format!("{what} of map '{}', per-CPU values summed", m.info.name);
                fams.index(&name, &help, kind)
            })
            .collect();
        let decoders = rule.map(|r| &r.labels);
        let origin_names: Vec<&str> = origin_labels.iter().map(|(n, _)| n.as_str()).collect();
        let with_origin = |mut text: String| {
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(&map_labels);
            text
        };
        // Label names by the key's member paths, allocated once per shape.
        let mut plan: Option<(Vec<String>, Vec<String>)> = None;
        let mut label_names = |parts: &[(String, KeyPart)]| -> Vec<String> {
            let same = plan.as_ref().is_some_and(|(paths, _)| {
                paths.len() == parts.len() && paths.iter().zip(parts).all(|(p, (q, _))| p == q)
            });
            if !same {
                let paths: Vec<String> = parts.iter().map(|(p, _)| p.clone()).collect();
                let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
                let labels = names::key_labels(&refs, &origin_names);
                plan = Some((paths, labels));
            }
            plan.as_ref().map(|(_, l)| l.clone()).unwrap_or_default()
        };
        let mut series = |key: &[u8], values: &[i128]| {
            let parts = m.parts_of(key);
            let label_names = label_names(&parts);
            let pairs: Vec<(String, String)> = parts
                .iter()
                .zip(label_names)
                .map(|((path, part), label)| {
                    let decoder = decoders
                        .and_then(|d| d.get(path).or_else(|| d.get(&path.replace('.', "_"))))
                        .copied();
                    (label, render(part, decoder, ifnames))
                })
                .collect();
            let labels = with_origin(labels_text(&pairs));
            for (&f, v) in families.iter().zip(values) {
                fams.at(f).push(&labels, Number::Int(*v));
            }
        };
        let mut seen = 0usize;
        let read = if m.info.max_entries as usize <= cap {
            // The cap cannot be reached: every entry is a series, as read.
            m.for_each_value(|key, values| {
                seen += 1;
                series(key, values)
            })
            .map(|()| None)
        } else {
            let mut capped = Capped::new(cap, fields.len());
            m.for_each_value(|key, values| {
                seen += 1;
                capped.add(key, values)
            })
            .map(|()| Some(capped))
        };
        let capped = match read {
            Ok(c) => c,
            Err(e) => return errors.push(format!("map '{}' (id {}): {e}", m.info.name, m.info.id)),
        };
        let mut dropped = 0;
        if let Some(capped) = capped {
            for (key, values) in &capped.kept {
                series(key, values);
            }
            if let Some(key) = &capped.other_key {
                // The 'other' series: every key label "other".
                let names = label_names(&m.parts_of(key));
                let pairs: Vec<(&String, &str)> = names.iter().map(|n| (n, "other")).collect();
                let labels = with_origin(labels_text(&pairs));
                for (&f, v) in families.iter().zip(&capped.other) {
                    fams.at(f).push(&labels, Number::Int(*v));
                }
                dropped = capped.dropped;
            }
        }
        fams.at(own.dropped)
            .push(&map_labels, Number::Int(dropped as i128));
        fams.at(own.entries)
            .push(&map_labels, Number::Int(seen as i128));
    }
}

/// The prefix of every map family: `tcbpf_map_<map>_<field>`. No family of
/// the exporter's own starts with it ([`Own`]), so no map name can take one
/// of their names.
pub const MAP_PREFIX: &str = "tcbpf_map";

/// The series of a map beyond its cap: the `cap` smallest keys in byte
/// order are kept (the same keys at every scrape, whatever the read order
/// or the number of entries), the rest summed into one 'other' series.
/// Holds at most `cap` keys and values.
struct Capped {
    cap: usize,
    kept: BTreeMap<Vec<u8>, Vec<i128>>,
    other: Vec<i128>,
    other_key: Option<Vec<u8>>,
    dropped: usize,
}

impl Capped {
    fn new(cap: usize, fields: usize) -> Capped {
        Capped {
            cap,
            kept: BTreeMap::new(),
            other: vec![0; fields],
            other_key: None,
            dropped: 0,
        }
    }

    fn add(&mut self, key: &[u8], values: &[i128]) {
        if self.kept.len() < self.cap {
            self.kept.insert(key.to_vec(), values.to_vec());
            return;
        }
        let larger_kept = self
            .kept
            .last_key_value()
            .is_some_and(|(k, _)| key < k.as_slice());
        if larger_kept {
            if let Some((k, v)) = self.kept.pop_last() {
                self.sum_into_other(&k, &v);
            }
            self.kept.insert(key.to_vec(), values.to_vec());
        } else {
            self.sum_into_other(key, values);
        }
    }

    fn sum_into_other(&mut self, key: &[u8], values: &[i128]) {
        for (s, v) in self.other.iter_mut().zip(values) {
            *s = s.wrapping_add(*v);
        }
        self.dropped += 1;
        if self.other_key.is_none() {
            self.other_key = Some(key.to_vec());
        }
    }
}

/// The exporter's own families (see [`MAP_PREFIX`]): program statistics
/// under `tcbpf_prog_`, what the exporter read of each map and of itself
/// under `tcbpf_exporter_`.
struct Own {
    runs: usize,
    run_seconds: usize,
    prog_info: usize,
    map_info: usize,
    entries: usize,
    dropped: usize,
    errors: usize,
    policy_generation: usize,
}

impl Own {
    fn new(fams: &mut Families) -> Own {
        Own {
            runs: fams.own(
                "tcbpf_prog_runs",
                "Runs of an attached program (counted while the exporter runs: BPF_ENABLE_STATS)",
                Type::Counter,
            ),
            run_seconds: fams.own(
                "tcbpf_prog_run_seconds",
                "Time spent in an attached program (counted while the exporter runs: BPF_ENABLE_STATS)",
                Type::Counter,
            ),
            prog_info: fams.own(
                "tcbpf_prog",
                "An attached program: its kernel id, tag and hook",
                Type::Info,
            ),
            map_info: fams.own(
                "tcbpf_exporter_map",
                "An exported map: its kernel id and type",
                Type::Info,
            ),
            entries: fams.own(
                "tcbpf_exporter_map_entries",
                "Entries of an exported map",
                Type::Gauge,
            ),
            dropped: fams.own(
                "tcbpf_exporter_map_dropped_series",
                "Keys of a map beyond its series cap, summed into its 'other' series in this scrape",
                Type::Gauge,
            ),
            errors: fams.own(
                "tcbpf_exporter_scrape_errors",
                "Problems met in this scrape (devices or maps that could not be read)",
                Type::Gauge,
            ),
            policy_generation: fams.own(
                "tcbpf_exporter_policy_generation",
                "The policy generation in force at a slot of a map-in-map (tcbpf map commit; 0 without one)",
                Type::Gauge,
            ),
        }
    }
}

/// At most this many slots of one map-in-map are exported.
const MAX_SLOTS: usize = 1024;

/// `tcbpf_exporter_policy_generation`: the policy generation (`tcbpf map commit`)
/// each filled slot of a map-in-map holds; nothing for other maps that
/// have no rows to export.
fn export_generations(
    id: u32,
    origin: &Origin,
    exported: &mut Exported,
    own: &Own,
    fams: &mut Families,
    errors: &mut Vec<String>,
) {
    use tcbpf::abi::MapType;
    use tcbpf::maps::generation;
    let Ok(fd) = sys::obj::map_by_id(id, sys::obj::open::RDONLY) else {
        return; // gone since the program's info
    };
    let Ok(info) = sys::info::map_info(&fd) else {
        return;
    };
    if !matches!(
        info.kind(),
        Some(MapType::ArrayOfMaps | MapType::HashOfMaps)
    ) || info.key_size != 4
    {
        return;
    }
    let map_labels = exported.labels(&info.name, origin);
    let mut map_info = map_labels.clone();
    map_info.push(("id".to_string(), id.to_string()));
    map_info.push(("type".to_string(), info.type_name().to_string()));
    fams.at(own.map_info)
        .push(&labels_text(&map_info), Number::Int(1));
    let (mut prev, mut next, mut shown) = (None::<[u8; 4]>, [0u8; 4], 0);
    while shown < MAX_SLOTS {
        match sys::map::next_key(&fd, prev.as_ref().map(|k| &k[..]), &mut next) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return errors.push(format!("map '{}' (id {id}): {e}", info.name)),
        }
        prev = Some(next);
        let slot = u32::from_ne_bytes(next);
        let inner = match generation::in_force(&fd, slot) {
            Ok(Some(inner)) => inner,
            Ok(None) => continue,
            Err(e) => {
                return errors.push(format!("map '{}' (id {id}) slot {slot}: {e}", info.name))
            }
        };
        shown += 1;
        let mut labels = map_labels.clone();
        labels.push(("slot".to_string(), slot.to_string()));
        fams.at(own.policy_generation)
            .push(&labels_text(&labels), Number::Int(inner.generation as i128));
    }
}

pub fn open_by_id(id: u32) -> Result<StatMap, ReadError> {
    let fd = sys::obj::map_by_id(id, sys::obj::open::RDONLY)?;
    let map = tcbpf::front::Map::from_fd(fd, format!("id {id}"))?;
    StatMap::new(map)
}

/// Interface names by index, asked once per scrape.
#[derive(Default)]
pub struct IfNames {
    sock: Option<Socket>,
    known: HashMap<u32, String>,
}

impl IfNames {
    fn name(&mut self, index: u32) -> String {
        if let Some(n) = self.known.get(&index) {
            return n.clone();
        }
        if self.sock.is_none() {
            self.sock = Socket::open().ok();
        }
        let n = self
            .sock
            .as_ref()
            .and_then(|s| device::ifname(s, index).ok())
            .unwrap_or_else(|| index.to_string());
        self.known.insert(index, n.clone());
        n
    }
}

/// A key part as a label value, through its decoder.
pub fn render(part: &KeyPart, decoder: Option<Decoder>, names: &mut IfNames) -> String {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    match (part, decoder) {
        (KeyPart::Int(n), Some(Decoder::Ip)) if (0..=u32::MAX as i128).contains(n) => {
            Ipv4Addr::from((*n as u32).to_le_bytes()).to_string()
        }
        (KeyPart::Int(n), Some(Decoder::Ip)) => {
            Ipv6Addr::from((*n as u128).to_le_bytes()).to_string()
        }
        (KeyPart::Bytes(b), Some(Decoder::Ip)) if b.len() == 4 => {
            Ipv4Addr::from([b[0], b[1], b[2], b[3]]).to_string()
        }
        (KeyPart::Bytes(b), Some(Decoder::Ip)) if b.len() == 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Ipv6Addr::from(a).to_string()
        }
        (KeyPart::Int(n), Some(Decoder::Ifname)) if (1..=u32::MAX as i128).contains(n) => {
            names.name(*n as u32)
        }
        (KeyPart::Int(n), Some(Decoder::Hex)) => format!("{n:#x}"),
        (KeyPart::Int(n), _) => n.to_string(),
        (KeyPart::Name(s), _) => s.clone(),
        (KeyPart::Bytes(b), _) => hex(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_found_alike_get_a_copy_label_and_own_families_stay_out_of_the_map_prefix() {
        let mut e = Exported::default();
        let fixed = Origin { labels: vec![] };
        let at = |pref: &str| Origin {
            labels: vec![("dev".into(), "v1".into()), ("attach".into(), pref.into())],
        };
        let text = |l: Vec<(String, String)>| labels_text(&l);
        assert_eq!(text(e.labels("stats", &fixed)), "map=\"stats\"");
        assert_eq!(text(e.labels("stats", &fixed)), "map=\"stats\",copy=\"2\"");
        assert_eq!(text(e.labels("stats", &fixed)), "map=\"stats\",copy=\"3\"");
        assert_eq!(
            text(e.labels("stats", &at("pref 1 handle 0x1"))),
            "map=\"stats\",dev=\"v1\",attach=\"pref 1 handle 0x1\""
        );
        assert_eq!(
            text(e.labels("stats", &at("pref 2 handle 0x1"))),
            "map=\"stats\",dev=\"v1\",attach=\"pref 2 handle 0x1\""
        );
        let mut fams = Families::new(false);
        let own = Own::new(&mut fams);
        for i in [
            own.runs,
            own.run_seconds,
            own.prog_info,
            own.map_info,
            own.entries,
            own.dropped,
            own.errors,
            own.policy_generation,
        ] {
            let name = &fams.at(i).name;
            assert!(!name.starts_with(MAP_PREFIX), "{name}");
        }
    }

    #[test]
    fn decoders_render_addresses_names_and_hex() {
        let mut n = IfNames::default();
        let ip = u32::from_le_bytes([10, 77, 0, 2]) as i128;
        assert_eq!(
            render(&KeyPart::Int(ip), Some(Decoder::Ip), &mut n),
            "10.77.0.2"
        );
        assert_eq!(
            render(
                &KeyPart::Bytes(vec![192, 0, 2, 1]),
                Some(Decoder::Ip),
                &mut n
            ),
            "192.0.2.1"
        );
        assert_eq!(
            render(&KeyPart::Int(255), Some(Decoder::Hex), &mut n),
            "0xff"
        );
        assert_eq!(render(&KeyPart::Int(255), None, &mut n), "255");
        assert_eq!(render(&KeyPart::Bytes(vec![1, 0xab]), None, &mut n), "01ab");
        assert_eq!(
            render(&KeyPart::Int(1), Some(Decoder::Ifname), &mut n),
            "lo"
        );
    }
}
