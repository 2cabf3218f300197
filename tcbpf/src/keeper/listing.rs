//! The text of `list` and `status` replies: one tab-separated line per
//! set (`set`), map (`map`), counter (`stat`) and recent client (`client`),
//! and parsing it back. Pure: strings in, values out.

use super::proto::ProtoError;

fn bad(msg: impl Into<String>) -> ProtoError {
    ProtoError(msg.into())
}

/// One set as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetInfo {
    /// The set's name (the exporting object's file name).
    pub name: String,
    /// The object name as the exporter sent it.
    pub object: String,
    /// `st_dev` and `st_ino` the exporter sent.
    pub dev: u64,
    /// See `dev`.
    pub ino: u64,
    /// What the asking client may get: `rw`, `ro`.
    pub access: String,
    /// Seconds since the epoch when the set arrived.
    pub imported: u64,
    /// 1, plus one per export that replaced the set.
    pub generation: u64,
    /// Its maps.
    pub maps: Vec<MapInfoLine>,
}

/// One map of a set as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapInfoLine {
    /// The entry id (`BPF_MAP<id>`).
    pub id: u32,
    /// The kernel's map id.
    pub map_id: u32,
    /// Map type name (`hash`, `prog_array`…).
    pub map_type: String,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Max entries.
    pub max_entries: u32,
    /// Map flags.
    pub flags: u32,
    /// The kernel's map name.
    pub name: String,
}

/// A client the keeper served recently.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientLine {
    /// Its process id.
    pub pid: i32,
    /// Its user id.
    pub uid: u32,
    /// The set it got.
    pub set: String,
    /// `rw` or `ro`.
    pub access: String,
    /// How many maps it got.
    pub maps: u32,
    /// True while its process still runs (it may hold the maps).
    pub alive: bool,
}

/// A whole listing (`list`) or status (`status`: with counters and
/// clients).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    /// The sets.
    pub sets: Vec<SetInfo>,
    /// Counters (`served`, `refused`, `imports`…), in order.
    pub counters: Vec<(String, u64)>,
    /// Recent clients.
    pub clients: Vec<ClientLine>,
}

/// Tabs and newlines cannot appear in a field: shown as `?`.
fn field(s: &str) -> String {
    s.replace(['\t', '\n'], "?")
}

/// The text of a listing: one tab-separated line per set (`set`), map
/// (`map`), counter (`stat`) and client (`client`).
pub fn encode_listing(l: &Listing) -> String {
    let mut out = String::new();
    for s in &l.sets {
        out.push_str(&format!(
            "set\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            field(&s.name),
            field(&s.object),
            s.dev,
            s.ino,
            s.access,
            s.imported,
            s.generation
        ));
        for m in &s.maps {
            out.push_str(&format!(
                "map\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                m.id,
                m.map_id,
                field(&m.map_type),
                m.key_size,
                m.value_size,
                m.max_entries,
                m.flags,
                field(&m.name)
            ));
        }
    }
    for (k, v) in &l.counters {
        out.push_str(&format!("stat\t{}\t{v}\n", field(k)));
    }
    for c in &l.clients {
        out.push_str(&format!(
            "client\t{}\t{}\t{}\t{}\t{}\t{}\n",
            c.pid,
            c.uid,
            field(&c.set),
            c.access,
            c.maps,
            u8::from(c.alive)
        ));
    }
    out
}

/// Parses the text of [`encode_listing`].
pub fn decode_listing(text: &str) -> Result<Listing, ProtoError> {
    fn num<T: std::str::FromStr>(line: usize, what: &str, s: &str) -> Result<T, ProtoError> {
        s.parse()
            .map_err(|_| bad(format!("listing line {line}: {what} '{s}' is not a number")))
    }
    let mut l = Listing::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let f: Vec<&str> = line.split('\t').collect();
        match (f[0], f.len()) {
            // A keeper from before generations sends 7 fields.
            ("set", 7 | 8) => l.sets.push(SetInfo {
                name: f[1].into(),
                object: f[2].into(),
                dev: num(n, "dev", f[3])?,
                ino: num(n, "ino", f[4])?,
                access: f[5].into(),
                imported: num(n, "time", f[6])?,
                generation: match f.get(7) {
                    Some(g) => num(n, "generation", g)?,
                    None => 1,
                },
                maps: Vec::new(),
            }),
            ("map", 9) => {
                let set = l
                    .sets
                    .last_mut()
                    .ok_or_else(|| bad(format!("listing line {n}: map before any set")))?;
                set.maps.push(MapInfoLine {
                    id: num(n, "id", f[1])?,
                    map_id: num(n, "map id", f[2])?,
                    map_type: f[3].into(),
                    key_size: num(n, "key size", f[4])?,
                    value_size: num(n, "value size", f[5])?,
                    max_entries: num(n, "max entries", f[6])?,
                    flags: num(n, "flags", f[7])?,
                    name: f[8].into(),
                });
            }
            ("stat", 3) => l.counters.push((f[1].into(), num(n, "counter", f[2])?)),
            ("client", 7) => l.clients.push(ClientLine {
                pid: num(n, "pid", f[1])?,
                uid: num(n, "uid", f[2])?,
                set: f[3].into(),
                access: f[4].into(),
                maps: num(n, "maps", f[5])?,
                alive: f[6] == "1",
            }),
            _ => return Err(bad(format!("listing line {n} is not understood: {line:?}"))),
        }
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_round_trips_and_escapes_tabs() {
        let l = Listing {
            sets: vec![SetInfo {
                name: "a\tb.o".into(),
                object: "bpf/a.o".into(),
                dev: 1,
                ino: 2,
                access: "ro".into(),
                imported: 1700000000,
                generation: 3,
                maps: vec![MapInfoLine {
                    id: 3,
                    map_id: 44,
                    map_type: "hash".into(),
                    key_size: 4,
                    value_size: 8,
                    max_entries: 16,
                    flags: 1,
                    name: "stats".into(),
                }],
            }],
            counters: vec![("served".into(), 5)],
            clients: vec![ClientLine {
                pid: 9,
                uid: 65534,
                set: "a?b.o".into(),
                access: "ro".into(),
                maps: 1,
                alive: true,
            }],
        };
        let text = encode_listing(&l);
        let back = decode_listing(&text).unwrap();
        assert_eq!(back.sets[0].name, "a?b.o");
        assert_eq!(back.sets[0].generation, 3);
        assert_eq!(back.sets[0].maps, l.sets[0].maps);
        assert_eq!(back.counters, l.counters);
        assert_eq!(back.clients, l.clients);
        assert!(decode_listing("map\t1\t2\t3\t4\t5\t6\t7\tx").is_err());
        assert!(decode_listing("bogus").is_err());
    }
}
