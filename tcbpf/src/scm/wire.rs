//! The iproute2 hand-off payload, `struct bpf_map_aux`, as bytes and back.
//!
//! Pure: bytes in, typed values out; no sockets, no descriptors. The layout is
//! the native x86_64 one tc uses (little-endian here, with 4 bytes of padding
//! after the 64-byte object name so the `struct stat` fields are 8-aligned):
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | `u16 uds_ver` (1) |
//! | 2 | `u16 num_ent`: maps in the whole transfer |
//! | 4 | `char obj_name[64]`, NUL-terminated |
//! | 72 | `u64 st_dev`, `u64 st_ino` |
//! | 88 | `struct bpf_elf_map ent[n]`, 20, 24, 28 or 36 bytes each (five to nine `u32`) |
//!
//! A datagram carries `n <= 64` entries: exactly `88 + size * n` bytes, with
//! `n` descriptors. iproute2 kept `uds_ver` at 1 while `struct bpf_elf_map`
//! grew, so the entry size is told from the datagram's length and its
//! descriptor count ([`decode_datagram`]):
//!
//! | size | iproute2 | fields |
//! | --- | --- | --- |
//! | 20 | 2015 (4.1–4.3) | type, size_key, size_value, max_elem, id |
//! | 24 | 2016 (4.4–4.5) | + pinning (after id) |
//! | 28 | 2016–2017 (4.6–4.11) | + flags, inserted after max_elem |
//! | 36 | 2017 on (tc today) | + inner_id, inner_idx |

use std::fmt;

/// `uds_ver`: the only version iproute2 has ever sent.
pub const VERSION: u16 = 1;
/// Entries (and descriptors) in one datagram at most (`BPF_SCM_MAX_FDS`).
pub const MAX_MAPS_PER_DATAGRAM: usize = 64;
/// Bytes before the first entry.
pub const HEADER_LEN: usize = 88;
/// Bytes of one `struct bpf_elf_map` entry as tc sends it today (36).
pub const ENTRY_LEN: usize = EntrySize::V36.bytes();
/// Bytes of `obj_name`, including its NUL.
pub const OBJ_NAME_LEN: usize = 64;
/// The largest datagram: a full chunk of 64 entries.
pub const MAX_DATAGRAM_LEN: usize = HEADER_LEN + ENTRY_LEN * MAX_MAPS_PER_DATAGRAM;

const NAME_AT: usize = 4;
const DEV_AT: usize = 72;
const INO_AT: usize = 80;

/// The object the maps came from, as the exporter names it: the file name it
/// loaded and that file's `st_dev`/`st_ino` (zero when there is no file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectId {
    /// Object file name; at most 63 bytes travel (longer names are cut, as
    /// tc's `strlcpy` does).
    pub name: String,
    /// `st_dev` of the object file.
    pub dev: u64,
    /// `st_ino` of the object file.
    pub ino: u64,
}

/// Which generation of `struct bpf_elf_map` a datagram carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EntrySize {
    /// 20 bytes: type, key size, value size, max entries, id (2015).
    V20,
    /// 24 bytes: adds pinning after the id (2016).
    V24,
    /// 28 bytes: flags after max entries, then id and pinning (2016 to 2017).
    V28,
    /// 36 bytes: adds inner_id and inner_idx (2017 on; tc today).
    #[default]
    V36,
}

impl EntrySize {
    /// Every generation, oldest first.
    pub const ALL: [EntrySize; 4] = [
        EntrySize::V20,
        EntrySize::V24,
        EntrySize::V28,
        EntrySize::V36,
    ];

    /// Bytes of one entry.
    pub const fn bytes(self) -> usize {
        match self {
            EntrySize::V20 => 20,
            EntrySize::V24 => 24,
            EntrySize::V28 => 28,
            EntrySize::V36 => 36,
        }
    }

    /// The generation whose entries are `n` bytes, if any.
    pub fn from_bytes(n: usize) -> Option<EntrySize> {
        Self::ALL.into_iter().find(|e| e.bytes() == n)
    }

    /// The `u32` words of `desc` this generation carries, in wire order.
    fn words(self, d: &MapDesc) -> Vec<u32> {
        let mut w = vec![d.map_type, d.key_size, d.value_size, d.max_entries];
        match self {
            EntrySize::V20 => w.push(d.id),
            EntrySize::V24 => w.extend([d.id, d.pinning]),
            EntrySize::V28 => w.extend([d.flags, d.id, d.pinning]),
            EntrySize::V36 => w.extend([d.flags, d.id, d.pinning, d.inner_id, d.inner_idx]),
        }
        w
    }

    /// A description from this generation's words (`w.len()` is
    /// `bytes() / 4`); the fields it lacks are zero.
    fn desc(self, w: &[u32]) -> MapDesc {
        let mut d = MapDesc {
            map_type: w[0],
            key_size: w[1],
            value_size: w[2],
            max_entries: w[3],
            ..MapDesc::default()
        };
        match self {
            EntrySize::V20 => d.id = w[4],
            EntrySize::V24 => (d.id, d.pinning) = (w[4], w[5]),
            EntrySize::V28 | EntrySize::V36 => {
                (d.flags, d.id, d.pinning) = (w[4], w[5], w[6]);
                if self == EntrySize::V36 {
                    (d.inner_id, d.inner_idx) = (w[7], w[8]);
                }
            }
        }
        d
    }
}

impl fmt::Display for EntrySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.bytes())
    }
}

/// One map as `struct bpf_elf_map` describes it: what the importer should
/// find behind the descriptor sent with it, and the `id` that names it in
/// the environment (`BPF_MAP<id>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapDesc {
    /// Kernel map type number (`BPF_MAP_TYPE_*`).
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// `BPF_F_*` map flags.
    pub flags: u32,
    /// The map's id in its object (not the kernel's map id).
    pub id: u32,
    /// Legacy pinning (0 none, 1 object namespace, 2 global, else custom).
    pub pinning: u32,
    /// For map-in-map: the `id` of the inner map template.
    pub inner_id: u32,
    /// For map-in-map: the slot the map takes in its outer map.
    pub inner_idx: u32,
}

/// One decoded datagram: the header and the entries of this chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The exporting object.
    pub object: ObjectId,
    /// `num_ent`: maps in the whole transfer, over every datagram.
    pub total: u16,
    /// The entries this datagram carries, in descriptor order.
    pub maps: Vec<MapDesc>,
    /// The generation of its entries.
    pub entry_size: EntrySize,
}

/// Why a payload is not a `struct bpf_map_aux` chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the 88-byte header.
    TooShort(usize),
    /// `uds_ver` is not 1.
    Version(u16),
    /// The entries part is not a whole number of 36-byte entries.
    PartialEntry(usize),
    /// More than 64 entries.
    TooManyEntries(usize),
    /// The entries part is not one 20-, 24-, 28- or 36-byte entry per descriptor.
    Entries {
        /// The datagram's length.
        len: usize,
        /// Descriptors it came with.
        fds: usize,
    },
    /// `num_ent` is 0 but entries follow, or entries carried exceed `num_ent`.
    CountTooSmall {
        /// `num_ent` in the header.
        total: u16,
        /// Entries the datagram carries.
        carried: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooShort(n) => {
                write!(
                    f,
                    "datagram of {n} bytes is shorter than the {HEADER_LEN}-byte header"
                )
            }
            WireError::Version(v) => write!(f, "unsupported uds_ver {v} (expected {VERSION})"),
            WireError::PartialEntry(n) => write!(
                f,
                "datagram of {n} bytes does not hold whole {ENTRY_LEN}-byte map entries"
            ),
            WireError::TooManyEntries(n) => write!(
                f,
                "datagram carries {n} map entries, more than {MAX_MAPS_PER_DATAGRAM}"
            ),
            WireError::Entries { len, fds } => {
                let body = len.saturating_sub(HEADER_LEN);
                if body % ENTRY_LEN == 0 {
                    write!(
                        f,
                        "{fds} descriptor(s) for {} map entries",
                        body / ENTRY_LEN
                    )
                } else {
                    write!(
                        f,
                        "datagram of {len} bytes with {fds} descriptor(s) does not hold one 20-, 24-, 28- or 36-byte map entry per descriptor"
                    )
                }
            }
            WireError::CountTooSmall { total, carried } => write!(
                f,
                "datagram carries {carried} map entries but its count num_ent is {total}"
            ),
        }
    }
}

impl std::error::Error for WireError {}

impl WireError {
    /// The class of failure: bad input (what was given is wrong).
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::BadInput
    }
}

/// Encodes one datagram: the header with `total` maps in the whole transfer,
/// and `maps` (at most 64) as this chunk's entries.
///
/// # Panics
///
/// Never on input the sender builds with [`chunk_ranges`]; more than 64
/// entries is a programming error and is cut to 64.
pub fn encode_chunk(object: &ObjectId, total: u16, maps: &[MapDesc]) -> Vec<u8> {
    encode_chunk_sized(object, total, maps, EntrySize::V36)
}

/// [`encode_chunk`] with entries of an older generation, for receivers built
/// against older iproute2 headers: the fields that generation lacks (see
/// the table above: flags before 28 bytes, pinning at 20, inner_id and
/// inner_idx before 36) are not sent.
pub fn encode_chunk_sized(
    object: &ObjectId,
    total: u16,
    maps: &[MapDesc],
    size: EntrySize,
) -> Vec<u8> {
    let maps = &maps[..maps.len().min(MAX_MAPS_PER_DATAGRAM)];
    let entry_len = size.bytes();
    let mut out = vec![0u8; HEADER_LEN + entry_len * maps.len()];
    out[0..2].copy_from_slice(&VERSION.to_ne_bytes());
    out[2..4].copy_from_slice(&total.to_ne_bytes());
    let name = truncated_name(&object.name);
    out[NAME_AT..NAME_AT + name.len()].copy_from_slice(name);
    out[DEV_AT..DEV_AT + 8].copy_from_slice(&object.dev.to_ne_bytes());
    out[INO_AT..INO_AT + 8].copy_from_slice(&object.ino.to_ne_bytes());
    for (i, map) in maps.iter().enumerate() {
        let at = HEADER_LEN + i * entry_len;
        for (j, word) in size.words(map).iter().enumerate() {
            out[at + 4 * j..at + 4 * j + 4].copy_from_slice(&word.to_ne_bytes());
        }
    }
    out
}

/// Decodes one datagram's payload of 36-byte entries (tc today), checking
/// the version, that the length is the header plus whole entries (at most
/// 64), and that `num_ent` covers them. A receiver, which knows how many
/// descriptors came along, uses [`decode_datagram`] to take every generation.
pub fn decode_chunk(bytes: &[u8]) -> Result<Chunk, WireError> {
    let (total, object) = header(bytes)?;
    let body = bytes.len() - HEADER_LEN;
    if body % ENTRY_LEN != 0 {
        return Err(WireError::PartialEntry(bytes.len()));
    }
    entries(bytes, total, object, body / ENTRY_LEN, EntrySize::V36)
}

/// Decodes one datagram that came with `fds` descriptors: one entry per
/// descriptor, the entry size (20, 24, 28 or 36 bytes) being what the length
/// left after the header divided by `fds` gives. Checks the version, that
/// the entries fit that rule, that there are at most 64 and that `num_ent`
/// covers them. No descriptors and no entries is a chunk of zero maps.
pub fn decode_datagram(bytes: &[u8], fds: usize) -> Result<Chunk, WireError> {
    let (total, object) = header(bytes)?;
    let body = bytes.len() - HEADER_LEN;
    let size = match (body, fds) {
        (0, 0) => EntrySize::V36,
        (_, 0) => {
            return Err(WireError::Entries {
                len: bytes.len(),
                fds,
            })
        }
        _ if body % fds == 0 => EntrySize::from_bytes(body / fds).ok_or(WireError::Entries {
            len: bytes.len(),
            fds,
        })?,
        _ => {
            return Err(WireError::Entries {
                len: bytes.len(),
                fds,
            })
        }
    };
    entries(bytes, total, object, fds, size)
}

/// The header: version checked, `num_ent` and the object.
fn header(bytes: &[u8]) -> Result<(u16, ObjectId), WireError> {
    if bytes.len() < HEADER_LEN {
        return Err(WireError::TooShort(bytes.len()));
    }
    let version = u16::from_ne_bytes([bytes[0], bytes[1]]);
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let total = u16::from_ne_bytes([bytes[2], bytes[3]]);
    let name_bytes = &bytes[NAME_AT..NAME_AT + OBJ_NAME_LEN];
    let end = name_bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(OBJ_NAME_LEN);
    let object = ObjectId {
        name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
        dev: u64_at(bytes, DEV_AT),
        ino: u64_at(bytes, INO_AT),
    };
    Ok((total, object))
}

/// The `carried` entries of `size` after the header (the caller checked the
/// length is exactly that).
fn entries(
    bytes: &[u8],
    total: u16,
    object: ObjectId,
    carried: usize,
    size: EntrySize,
) -> Result<Chunk, WireError> {
    if carried > MAX_MAPS_PER_DATAGRAM {
        return Err(WireError::TooManyEntries(carried));
    }
    if carried > usize::from(total) {
        return Err(WireError::CountTooSmall { total, carried });
    }
    let words = size.bytes() / 4;
    let maps = (0..carried)
        .map(|i| {
            let at = HEADER_LEN + i * size.bytes();
            let w: Vec<u32> = (0..words).map(|j| u32_at(bytes, at + 4 * j)).collect();
            size.desc(&w)
        })
        .collect();
    Ok(Chunk {
        object,
        total,
        maps,
        entry_size: size,
    })
}

/// How a transfer of `total` maps splits into datagrams: index ranges of at
/// most 64 maps, in order.
pub fn chunk_ranges(total: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..total)
        .step_by(MAX_MAPS_PER_DATAGRAM)
        .map(move |start| start..(start + MAX_MAPS_PER_DATAGRAM).min(total))
}

/// The name bytes that travel: at most 63, cut at a character boundary so
/// the receiver decodes valid UTF-8.
fn truncated_name(name: &str) -> &[u8] {
    let mut end = name.len().min(OBJ_NAME_LEN - 1);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name.as_bytes()[..end]
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(id: u32) -> MapDesc {
        MapDesc {
            map_type: 2,
            key_size: 4,
            value_size: 8,
            max_entries: 256,
            flags: 0,
            id,
            pinning: 1,
            inner_id: 0,
            inner_idx: 0,
        }
    }

    fn object() -> ObjectId {
        ObjectId {
            name: "demo.o".into(),
            dev: 0x0102_0304_0506_0708,
            ino: 0x1112_1314_1516_1718,
        }
    }

    #[test]
    fn encoded_chunk_has_tc_layout_byte_for_byte() {
        let bytes = encode_chunk(&object(), 3, &[desc(7)]);
        assert_eq!(bytes.len(), 88 + 36);
        assert_eq!(&bytes[0..2], &[1, 0]);
        assert_eq!(&bytes[2..4], &[3, 0]);
        assert_eq!(&bytes[4..11], b"demo.o\0");
        assert!(
            bytes[11..72].iter().all(|&b| b == 0),
            "name padding and struct padding are zero"
        );
        assert_eq!(&bytes[72..80], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(
            &bytes[80..88],
            &[0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]
        );
        let expected: Vec<u8> = [2u32, 4, 8, 256, 0, 7, 1, 0, 0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        assert_eq!(&bytes[88..], &expected[..]);
    }

    #[test]
    fn decode_reads_back_what_encode_wrote() {
        let maps: Vec<MapDesc> = (0..64).map(desc).collect();
        let bytes = encode_chunk(&object(), 200, &maps);
        assert_eq!(bytes.len(), MAX_DATAGRAM_LEN);
        let chunk = decode_chunk(&bytes).unwrap();
        assert_eq!(chunk.object, object());
        assert_eq!(chunk.total, 200);
        assert_eq!(chunk.maps, maps);
    }

    #[test]
    fn decode_reads_hand_built_tc_bytes() {
        let mut bytes = vec![0u8; 88 + 36 * 2];
        bytes[0] = 1;
        bytes[2] = 2;
        bytes[4..10].copy_from_slice(b"foo.o\0");
        // entry 1: type 1 (hash), key 4, value 4, 1024 entries, id 42
        for (j, w) in [1u32, 4, 4, 1024, 0, 42, 2, 0, 0].iter().enumerate() {
            bytes[88 + 36 + 4 * j..88 + 36 + 4 * j + 4].copy_from_slice(&w.to_le_bytes());
        }
        let chunk = decode_chunk(&bytes).unwrap();
        assert_eq!(chunk.object.name, "foo.o");
        assert_eq!(chunk.maps.len(), 2);
        assert_eq!(chunk.maps[0], MapDesc::default());
        assert_eq!(chunk.maps[1].id, 42);
        assert_eq!(chunk.maps[1].max_entries, 1024);
        assert_eq!(chunk.maps[1].pinning, 2);
    }

    #[test]
    fn decode_rejects_wrong_version() {
        let mut bytes = encode_chunk(&object(), 1, &[desc(0)]);
        bytes[0] = 2;
        assert_eq!(decode_chunk(&bytes), Err(WireError::Version(2)));
    }

    #[test]
    fn decode_rejects_short_and_ragged_payloads() {
        assert_eq!(decode_chunk(&[1, 0, 1]), Err(WireError::TooShort(3)));
        let mut bytes = encode_chunk(&object(), 1, &[desc(0)]);
        bytes.pop();
        assert_eq!(decode_chunk(&bytes), Err(WireError::PartialEntry(88 + 35)));
    }

    #[test]
    fn decode_rejects_more_entries_than_count_or_sixty_four() {
        let bytes = encode_chunk(&object(), 1, &[desc(0), desc(1)]);
        assert_eq!(
            decode_chunk(&bytes),
            Err(WireError::CountTooSmall {
                total: 1,
                carried: 2
            })
        );
        let mut big = encode_chunk(&object(), 100, &(0..64).map(desc).collect::<Vec<_>>());
        big.extend_from_slice(&[0u8; 36]);
        assert_eq!(decode_chunk(&big), Err(WireError::TooManyEntries(65)));
    }

    #[test]
    fn long_object_names_are_cut_to_63_bytes_on_a_char_boundary() {
        let mut obj = object();
        obj.name = "é".repeat(40); // 80 bytes
        let bytes = encode_chunk(&obj, 1, &[desc(0)]);
        assert_eq!(bytes[4 + 63], 0);
        let back = decode_chunk(&bytes).unwrap();
        assert_eq!(back.object.name, "é".repeat(31));
    }

    #[test]
    fn transfers_split_into_chunks_of_sixty_four() {
        let r: Vec<_> = chunk_ranges(200).collect();
        assert_eq!(r, vec![0..64, 64..128, 128..192, 192..200]);
        assert_eq!(chunk_ranges(64).count(), 1);
        assert_eq!(chunk_ranges(65).collect::<Vec<_>>(), vec![0..64, 64..65]);
        assert_eq!(chunk_ranges(0).count(), 0);
    }

    /// A datagram of `n` entries, each the given words, as an older tc built it.
    fn hand_built(total: u16, entries: &[&[u32]]) -> Vec<u8> {
        let mut bytes = vec![0u8; 88];
        bytes[0] = 1;
        bytes[2..4].copy_from_slice(&total.to_le_bytes());
        bytes[4..10].copy_from_slice(b"old.o\0");
        for e in entries {
            bytes.extend(e.iter().flat_map(|w| w.to_le_bytes()));
        }
        bytes
    }

    #[test]
    fn datagram_of_20_byte_entries_reads_type_sizes_max_and_id() {
        let bytes = hand_built(2, &[&[1, 4, 8, 64, 7], &[2, 4, 8, 1, 8]]);
        let chunk = decode_datagram(&bytes, 2).unwrap();
        assert_eq!(chunk.entry_size, EntrySize::V20);
        assert_eq!(chunk.object.name, "old.o");
        assert_eq!(
            chunk.maps,
            vec![
                MapDesc {
                    map_type: 1,
                    key_size: 4,
                    value_size: 8,
                    max_entries: 64,
                    id: 7,
                    ..MapDesc::default()
                },
                MapDesc {
                    map_type: 2,
                    key_size: 4,
                    value_size: 8,
                    max_entries: 1,
                    id: 8,
                    ..MapDesc::default()
                },
            ]
        );
    }

    #[test]
    fn datagram_of_24_byte_entries_reads_id_then_pinning() {
        let bytes = hand_built(1, &[&[1, 4, 8, 64, 7, 2]]);
        let chunk = decode_datagram(&bytes, 1).unwrap();
        assert_eq!(chunk.entry_size, EntrySize::V24);
        assert_eq!((chunk.maps[0].id, chunk.maps[0].pinning), (7, 2));
        assert_eq!(chunk.maps[0].flags, 0);
    }

    #[test]
    fn datagram_of_28_byte_entries_reads_flags_id_and_pinning() {
        let bytes = hand_built(3, &[&[1, 4, 8, 64, 1, 7, 2], &[2, 4, 4, 9, 0, 3, 0]]);
        let chunk = decode_datagram(&bytes, 2).unwrap();
        assert_eq!(chunk.entry_size, EntrySize::V28);
        assert_eq!(chunk.total, 3);
        let m = chunk.maps[0];
        assert_eq!(
            (
                m.map_type,
                m.max_entries,
                m.flags,
                m.id,
                m.pinning,
                m.inner_id
            ),
            (1, 64, 1, 7, 2, 0)
        );
        assert_eq!((chunk.maps[1].id, chunk.maps[1].max_entries), (3, 9));
    }

    #[test]
    fn every_generation_reads_back_what_it_wrote_less_the_fields_it_lacks() {
        let full = MapDesc {
            map_type: 12,
            key_size: 4,
            value_size: 4,
            max_entries: 8,
            flags: 1,
            id: 5,
            pinning: 2,
            inner_id: 3,
            inner_idx: 4,
        };
        for size in EntrySize::ALL {
            let maps = vec![full; 64];
            let bytes = encode_chunk_sized(&object(), 70, &maps, size);
            assert_eq!(bytes.len(), 88 + size.bytes() * 64, "{size}");
            let chunk = decode_datagram(&bytes, 64).unwrap();
            assert_eq!(chunk.entry_size, size);
            assert_eq!(chunk.object, object());
            let got = chunk.maps[63];
            let mut want = full;
            if size.bytes() < 28 {
                want.flags = 0;
            }
            if size == EntrySize::V20 {
                want.pinning = 0;
            }
            if size != EntrySize::V36 {
                (want.inner_id, want.inner_idx) = (0, 0);
            }
            assert_eq!(got, want, "{size}-byte entries");
        }
    }

    #[test]
    fn encode_chunk_sized_36_is_encode_chunk() {
        let maps = [desc(1), desc(2)];
        assert_eq!(
            encode_chunk_sized(&object(), 2, &maps, EntrySize::V36),
            encode_chunk(&object(), 2, &maps)
        );
        let b28 = encode_chunk_sized(&object(), 1, &[desc(9)], EntrySize::V28);
        let words: Vec<u32> = b28[88..]
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(words, vec![2, 4, 8, 256, 0, 9, 1]);
    }

    #[test]
    fn datagram_whose_entries_do_not_match_its_descriptors_is_refused() {
        // 2 entries of 36 bytes with 1 descriptor: 72 bytes is no entry size.
        let two = encode_chunk(&object(), 2, &[desc(0), desc(1)]);
        let err = decode_datagram(&two, 1).unwrap_err();
        assert_eq!(
            err,
            WireError::Entries {
                len: 88 + 72,
                fds: 1
            }
        );
        assert_eq!(err.to_string(), "1 descriptor(s) for 2 map entries");
        // With 3 descriptors the same 72 bytes are three 24-byte entries,
        // which num_ent 2 does not cover (the receiver also checks every
        // descriptor against its entry, so a misread never gets through).
        assert_eq!(
            decode_datagram(&two, 3),
            Err(WireError::CountTooSmall {
                total: 2,
                carried: 3
            })
        );
        assert_eq!(
            decode_datagram(&two, 5).unwrap_err().to_string(),
            "5 descriptor(s) for 2 map entries"
        );
        // 3 entries of 28 bytes with 2 descriptors: 42 bytes each.
        let e: &[u32] = &[1, 4, 8, 64, 0, 7, 0];
        let b = hand_built(3, &[e, e, e]);
        assert_eq!(
            decode_datagram(&b, 2).unwrap_err().to_string(),
            "datagram of 172 bytes with 2 descriptor(s) does not hold one 20-, 24-, 28- or 36-byte map entry per descriptor"
        );
        // 2 descriptors over 30 bytes: 15 each.
        let mut odd = hand_built(2, &[]);
        odd.extend([0u8; 30]);
        assert!(decode_datagram(&odd, 2).is_err());
        // entries but no descriptors
        assert_eq!(
            decode_datagram(&two, 0),
            Err(WireError::Entries { len: 160, fds: 0 })
        );
        // the header alone and no descriptors: no maps
        assert_eq!(
            decode_datagram(&hand_built(0, &[]), 0).unwrap().maps,
            vec![]
        );
    }

    #[test]
    fn datagram_decode_checks_version_and_count_for_every_generation() {
        let mut b = hand_built(1, &[&[1, 4, 8, 64, 7]]);
        assert_eq!(decode_datagram(&b, 1).unwrap().maps.len(), 1);
        b[0] = 2;
        assert_eq!(decode_datagram(&b, 1), Err(WireError::Version(2)));
        let b = hand_built(1, &[&[1, 4, 8, 64, 7], &[1, 4, 8, 64, 8]]);
        assert_eq!(
            decode_datagram(&b, 2),
            Err(WireError::CountTooSmall {
                total: 1,
                carried: 2
            })
        );
        assert_eq!(decode_datagram(&[1, 0], 1), Err(WireError::TooShort(2)));
    }

    #[test]
    fn entry_sizes_are_known_by_their_byte_count_only() {
        for n in [0, 4, 16, 32, 40, 72] {
            assert_eq!(EntrySize::from_bytes(n), None, "{n}");
        }
        for size in EntrySize::ALL {
            assert_eq!(EntrySize::from_bytes(size.bytes()), Some(size));
        }
        assert_eq!(EntrySize::default(), EntrySize::V36);
    }
}
