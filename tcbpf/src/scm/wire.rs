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
//! | 88 | `struct bpf_elf_map ent[n]`, 36 bytes each (nine `u32`) |
//!
//! A datagram carries `n <= 64` entries: exactly `88 + 36 * n` bytes.

use std::fmt;

/// `uds_ver`: the only version iproute2 has ever sent.
pub const VERSION: u16 = 1;
/// Entries (and descriptors) in one datagram at most (`BPF_SCM_MAX_FDS`).
pub const MAX_MAPS_PER_DATAGRAM: usize = 64;
/// Bytes before the first entry.
pub const HEADER_LEN: usize = 88;
/// Bytes of one `struct bpf_elf_map` entry.
pub const ENTRY_LEN: usize = 36;
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

impl MapDesc {
    fn to_words(self) -> [u32; 9] {
        [
            self.map_type,
            self.key_size,
            self.value_size,
            self.max_entries,
            self.flags,
            self.id,
            self.pinning,
            self.inner_id,
            self.inner_idx,
        ]
    }

    fn from_words(w: [u32; 9]) -> Self {
        MapDesc {
            map_type: w[0],
            key_size: w[1],
            value_size: w[2],
            max_entries: w[3],
            flags: w[4],
            id: w[5],
            pinning: w[6],
            inner_id: w[7],
            inner_idx: w[8],
        }
    }
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
            WireError::CountTooSmall { total, carried } => write!(
                f,
                "datagram carries {carried} map entries but its count num_ent is {total}"
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// Encodes one datagram: the header with `total` maps in the whole transfer,
/// and `maps` (at most 64) as this chunk's entries.
///
/// # Panics
///
/// Never on input the sender builds with [`chunk_ranges`]; more than 64
/// entries is a programming error and is cut to 64.
pub fn encode_chunk(object: &ObjectId, total: u16, maps: &[MapDesc]) -> Vec<u8> {
    let maps = &maps[..maps.len().min(MAX_MAPS_PER_DATAGRAM)];
    let mut out = vec![0u8; HEADER_LEN + ENTRY_LEN * maps.len()];
    out[0..2].copy_from_slice(&VERSION.to_ne_bytes());
    out[2..4].copy_from_slice(&total.to_ne_bytes());
    let name = truncated_name(&object.name);
    out[NAME_AT..NAME_AT + name.len()].copy_from_slice(name);
    out[DEV_AT..DEV_AT + 8].copy_from_slice(&object.dev.to_ne_bytes());
    out[INO_AT..INO_AT + 8].copy_from_slice(&object.ino.to_ne_bytes());
    for (i, map) in maps.iter().enumerate() {
        let at = HEADER_LEN + i * ENTRY_LEN;
        for (j, word) in map.to_words().iter().enumerate() {
            out[at + 4 * j..at + 4 * j + 4].copy_from_slice(&word.to_ne_bytes());
        }
    }
    out
}

/// Decodes one datagram's payload, checking the version, that the length is
/// the header plus whole entries (at most 64), and that `num_ent` covers them.
pub fn decode_chunk(bytes: &[u8]) -> Result<Chunk, WireError> {
    if bytes.len() < HEADER_LEN {
        return Err(WireError::TooShort(bytes.len()));
    }
    let version = u16::from_ne_bytes([bytes[0], bytes[1]]);
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let total = u16::from_ne_bytes([bytes[2], bytes[3]]);
    let body = bytes.len() - HEADER_LEN;
    if body % ENTRY_LEN != 0 {
        return Err(WireError::PartialEntry(bytes.len()));
    }
    let carried = body / ENTRY_LEN;
    if carried > MAX_MAPS_PER_DATAGRAM {
        return Err(WireError::TooManyEntries(carried));
    }
    if carried > usize::from(total) {
        return Err(WireError::CountTooSmall { total, carried });
    }
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
    let maps = (0..carried)
        .map(|i| {
            let at = HEADER_LEN + i * ENTRY_LEN;
            let mut words = [0u32; 9];
            for (j, w) in words.iter_mut().enumerate() {
                *w = u32_at(bytes, at + 4 * j);
            }
            MapDesc::from_words(words)
        })
        .collect();
    Ok(Chunk {
        object,
        total,
        maps,
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
}
