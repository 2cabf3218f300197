//! One scrape: find the programs on the devices asked for (tc::discover),
//! their run statistics and the maps they use, read every map, and turn
//! rows into metric families named and labelled as the README says. Maps
//! given by reference are read as they are, without device labels.
//!
//! A map-in-map gives no rows: its slots' policy generations are exported
//! instead (`tcbpf_policy_generation`, read by `tcbpf::maps::generation`).
//!
//! Maps found through a device are opened read-only by id at the scrape
//! that first sees them and kept while a program still uses them; a map
//! whose program went away is closed and no longer exported.

use crate::config::{Config, Decoder, Kind};
use crate::keys::KeyPart;
use crate::metrics::{label_name, labels_text, metric_name, Families, Number, Type};
use crate::read::{ReadError, StatMap};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tcbpf::sys;
use tcbpf::tc::discover::{self, Hook};
use tcbpf::tc::tcx::Direction;
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
    /// choice), the rest is still exported.
    pub fn scrape(&self, openmetrics: bool, errors: &mut Vec<String>) -> Families {
        let mut fams = Families::new(openmetrics);
        let mut ifnames = IfNames::default();
        for m in &self.fixed {
            self.export_map(
                m,
                &Origin { labels: vec![] },
                &mut fams,
                &mut ifnames,
                errors,
            );
        }
        if !self.targets.is_empty() {
            self.scrape_devices(&mut fams, &mut ifnames, errors);
        }
        let err = fams.family(
            "tcbpf_exporter_scrape_errors",
            "Problems met in this scrape (devices or maps that could not be read)",
            Type::Gauge,
        );
        err.push("", Number::Int(errors.len() as i128));
        fams
    }

    fn scrape_devices(&self, fams: &mut Families, names: &mut IfNames, errors: &mut Vec<String>) {
        let sock = match Socket::open() {
            Ok(s) => s,
            Err(e) => return errors.push(format!("netlink: {e}")),
        };
        let mut seen_maps: HashMap<u32, Origin> = HashMap::new();
        let mut order = Vec::new();
        for t in &self.targets {
            let ifindex = match device::ifindex(&sock, &t.dev) {
                Ok(i) => i,
                Err(e) => {
                    errors.push(format!("dev {}: {e}", t.dev));
                    continue;
                }
            };
            let attached = match discover::attachments(&sock, ifindex, &t.directions) {
                Ok(a) => a,
                Err(e) => {
                    errors.push(format!("dev {}: {e}", t.dev));
                    continue;
                }
            };
            for a in attached {
                // A program detached since the dump is simply not there any more.
                let Ok(prog) = discover::program(a.prog_id) else {
                    continue;
                };
                let (hook, extra) = match &a.hook {
                    Hook::Filter { pref, handle, .. } => {
                        ("filter", format!("pref {pref} handle {handle:#x}"))
                    }
                    Hook::Tcx { link_id } => ("tcx", format!("link {link_id}")),
                };
                let base = vec![
                    ("dev".to_string(), t.dev.clone()),
                    ("direction".to_string(), a.direction.to_string()),
                    ("prog".to_string(), prog.name.clone()),
                ];
                let mut with_id = base.clone();
                with_id.push(("id".into(), prog.id.to_string()));
                fams.family(
                    "tcbpf_prog_run_count",
                    "Runs of an attached program (counted while the exporter runs: BPF_ENABLE_STATS)",
                    Type::Counter,
                )
                .push(&labels_text(&with_id), Number::Int(prog.run_cnt as i128));
                fams.family(
                    "tcbpf_prog_run_seconds",
                    "Time spent in an attached program (counted while the exporter runs: BPF_ENABLE_STATS)",
                    Type::Counter,
                )
                .push(&labels_text(&with_id), Number::Float(prog.run_time_ns as f64 / 1e9));
                let mut info = with_id;
                info.push(("tag".into(), prog.tag_hex()));
                info.push(("hook".into(), hook.into()));
                info.push(("attach".into(), extra));
                fams.family(
                    "tcbpf_prog",
                    "An attached program: id, tag, name and how it is attached",
                    Type::Info,
                )
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
            self.export_map(&m, &seen_maps[&id], fams, names, errors);
        }
        for id in outers {
            export_generations(id, &seen_maps[&id], fams, errors);
        }
    }

    fn export_map(
        &self,
        m: &StatMap,
        origin: &Origin,
        fams: &mut Families,
        names: &mut IfNames,
        errors: &mut Vec<String>,
    ) {
        let rule = self.config.map(&m.info.name);
        if rule.is_some_and(|r| r.skip) {
            return;
        }
        let fields = m.field_names();
        if fields.is_empty() {
            return;
        }
        let cap = rule.and_then(|r| r.cap).unwrap_or(self.config.cap);
        let map_part = rule
            .and_then(|r| r.rename.clone())
            .unwrap_or_else(|| m.info.name.clone());
        let families: Vec<usize> = fields
            .iter()
            .map(|f| {
                let fr = rule.and_then(|r| r.fields.get(f));
                let part = fr.and_then(|r| r.rename.clone()).unwrap_or(f.clone());
                let kind = match fr.and_then(|r| r.kind) {
                    Some(Kind::Gauge) => Type::Gauge,
                    _ => Type::Counter,
                };
                let name = metric_name(&["tcbpf", &map_part, &field_part(&part)]);
                let what = if f.is_empty() {
                    "value".to_string()
                } else {
                    format!("field '{f}'")
                };
                let help = format!(
                    "{what} of map '{}' (kernel id {}), per-CPU values summed",
                    m.info.name, m.info.id
                );
                fams.index(&name, &help, kind)
            })
            .collect();
        let decoders = rule.map(|r| &r.labels);
        let origin_text = labels_text(&origin.labels);
        let with_origin = |mut text: String| {
            if !origin_text.is_empty() {
                if !text.is_empty() {
                    text.push(',');
                }
                text.push_str(&origin_text);
            }
            text
        };
        // The first `cap` keys are series; the rest are summed into one.
        let mut seen = 0usize;
        let mut other = vec![0i128; fields.len()];
        let mut other_labels = None;
        let read = m.for_each_row(|_, parts, values| {
            seen += 1;
            if seen > cap {
                for (s, v) in other.iter_mut().zip(values) {
                    *s = s.wrapping_add(*v);
                }
                if other_labels.is_none() {
                    let names: Vec<(String, &str)> = parts
                        .iter()
                        .map(|(n, _)| (key_label(n, &origin.labels), "other"))
                        .collect();
                    other_labels = Some(with_origin(labels_text(&names)));
                }
                return;
            }
            let pairs: Vec<(String, String)> = parts
                .iter()
                .map(|(name, part)| {
                    let decoder = decoders.and_then(|d| d.get(name)).copied();
                    (
                        key_label(name, &origin.labels),
                        render(part, decoder, names),
                    )
                })
                .collect();
            let labels = with_origin(labels_text(&pairs));
            for (&f, v) in families.iter().zip(values) {
                fams.at(f).push(&labels, Number::Int(*v));
            }
        });
        if let Err(e) = read {
            return errors.push(format!("map '{}' (id {}): {e}", m.info.name, m.info.id));
        }
        let dropped = seen.saturating_sub(cap);
        if let Some(labels) = other_labels {
            for (&f, v) in families.iter().zip(&other) {
                fams.at(f).push(&labels, Number::Int(*v));
            }
        }
        let mut labels = vec![
            ("map".to_string(), m.info.name.clone()),
            ("id".to_string(), m.info.id.to_string()),
        ];
        labels.extend(origin.labels.iter().cloned());
        let labels = labels_text(&labels);
        fams.family(
            "tcbpf_map_dropped_series",
            "Keys of a map beyond its series cap, summed into its 'other' series in this scrape",
            Type::Gauge,
        )
        .push(&labels, Number::Int(dropped as i128));
        fams.family(
            "tcbpf_map_entries",
            "Entries of an exported map",
            Type::Gauge,
        )
        .push(&labels, Number::Int(seen as i128));
    }
}

/// At most this many slots of one map-in-map are exported.
const MAX_SLOTS: usize = 1024;

/// `tcbpf_policy_generation`: the policy generation (`tcbpf map commit`)
/// each filled slot of a map-in-map holds; nothing for other maps that
/// have no rows to export.
fn export_generations(id: u32, origin: &Origin, fams: &mut Families, errors: &mut Vec<String>) {
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
        let mut labels = vec![
            ("map".to_string(), info.name.clone()),
            ("id".to_string(), id.to_string()),
            ("slot".to_string(), slot.to_string()),
        ];
        labels.extend(origin.labels.iter().cloned());
        fams.family(
            "tcbpf_policy_generation",
            "The policy generation in force at a slot of a map-in-map (tcbpf map commit; 0 without one)",
            Type::Gauge,
        )
        .push(&labels_text(&labels), Number::Int(inner.generation as i128));
    }
}

fn open_by_id(id: u32) -> Result<StatMap, ReadError> {
    let fd = sys::obj::map_by_id(id, sys::obj::open::RDONLY)?;
    StatMap::new(fd)
}

/// A field path as a metric name part: `in.port` → `in_port`,
/// `hist[2]` → `hist_2`.
fn field_part(path: &str) -> String {
    path.replace('[', "_").replace(']', "")
}

/// A key member's label name; one that clashes with a device label
/// (`dev`, `direction`, `prog`) gets `key_` before it.
fn key_label(name: &str, base: &[(String, String)]) -> String {
    let l = label_name(name);
    if base.iter().any(|(b, _)| *b == l) {
        format!("key_{l}")
    } else {
        l
    }
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

    #[test]
    fn field_paths_become_name_parts() {
        assert_eq!(field_part("in.port"), "in.port");
        assert_eq!(
            metric_name(&["tcbpf", "m", &field_part("in.port")]),
            "tcbpf_m_in_port"
        );
        assert_eq!(
            metric_name(&["tcbpf", "m", &field_part("hist[2]")]),
            "tcbpf_m_hist_2"
        );
    }

    #[test]
    fn key_members_clashing_with_device_labels_are_prefixed() {
        let base = vec![("dev".to_string(), "v0".to_string())];
        assert_eq!(key_label("dev", &base), "key_dev");
        assert_eq!(key_label("port", &base), "port");
    }
}
