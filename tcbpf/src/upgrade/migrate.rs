//! Filling a migrated map and reconciling it after the swap: [`copy`]
//! reads the old map (flat batches), converts every value and writes the
//! new map, checking first that everything fits; [`wait_for_old_programs`]
//! waits until a swapped-out program runs nowhere; [`reconcile`] adds the
//! old program's writes since the copy (`sum`: counters with the kernel's
//! atomic add; `copy`: the old final value where the new program has not
//! written).

use std::os::fd::AsFd;

use super::convert::Converter;
use super::entries::Entries;
use super::plan::{Migration, Mode};
use super::sum_add::{Maps, SumAdd};
use super::{Error, Step};
use crate::abi::MapType;
use crate::sys::{self, map as sysmap, MapFd};

/// The old map's entries at the time of the copy.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub(super) entries: Entries,
    pub(super) old_sizes: sysmap::ElemSizes,
    pub(super) new_sizes: sysmap::ElemSizes,
}

/// Converts a whole value buffer (every CPU's copy) of the old map into
/// `out` (zeroed, the new map's whole value size).
fn convert_into(
    conv: &Converter,
    old: &[u8],
    out: &mut [u8],
    old_sizes: &sysmap::ElemSizes,
    new_sizes: &sysmap::ElemSizes,
) -> Result<(), super::convert::DoesNotFit> {
    let (os, ns) = (old_sizes.cpu_stride(), new_sizes.cpu_stride());
    for cpu in 0..old_sizes.cpus().max(1) {
        conv.convert(&old[cpu * os..], &mut out[cpu * ns..])?;
    }
    Ok(())
}

/// [`convert_into`] a new buffer.
fn convert_value(
    conv: &Converter,
    old: &[u8],
    old_sizes: &sysmap::ElemSizes,
    new_sizes: &sysmap::ElemSizes,
) -> Result<Vec<u8>, super::convert::DoesNotFit> {
    let mut out = vec![0u8; new_sizes.value()];
    convert_into(conv, old, &mut out, old_sizes, new_sizes)?;
    Ok(out)
}

/// Copies every entry of `old` into `new` through the converter, checking
/// first that they fit; returns the snapshot for reconciliation.
pub(super) fn copy(
    name: &str,
    mig: &Migration,
    old: &MapFd,
    new: &MapFd,
) -> Result<Snapshot, Error> {
    let sys_err = |e| Error::sys(Step::Copy, Some(name.into()), format!("map '{name}'"), e);
    let old_sizes = sysmap::ElemSizes::of(old).map_err(sys_err)?;
    let new_sizes = sysmap::ElemSizes::of(new).map_err(sys_err)?;
    let new_info = sys::info::map_info(new).map_err(sys_err)?;
    let entries = Entries::read(old, &old_sizes).map_err(|e| Error::maps(Step::Copy, name, e))?;
    let not_fit = |reason: String| {
        Error::new(
            Step::Copy,
            Some(name.into()),
            crate::ErrorKind::BadInput,
            format!("map '{name}': {reason}"),
        )
    };
    let is_array = matches!(
        new_info.kind(),
        Some(MapType::Array) | Some(MapType::PercpuArray)
    );
    let mut converted = Entries::with_sizes(&new_sizes, entries.len());
    for i in 0..entries.len() {
        let (k, v) = (entries.key(i), entries.value(i));
        if is_array && mig.shrinks_array {
            let index = u32::from_ne_bytes(k[..4].try_into().expect("array keys are 4 bytes"));
            if index >= new_info.max_entries {
                if v.iter().any(|b| *b != 0) {
                    return Err(not_fit(format!(
                        "index {index} holds a value but the new array has {} entries",
                        new_info.max_entries
                    )));
                }
                continue;
            }
        }
        let out = converted.push_zeroed(k);
        convert_into(&mig.value, v, out, &old_sizes, &new_sizes)
            .map_err(|e| not_fit(format!("the value at key {}: {e}", hex(k))))?;
    }
    if !is_array && converted.len() > new_info.max_entries as usize {
        return Err(not_fit(format!(
            "{} entries do not fit in {} (max_entries of the new map)",
            converted.len(),
            new_info.max_entries
        )));
    }
    converted
        .write(new, &new_sizes)
        .map_err(|e| Error::maps(Step::Copy, name, e))?;
    Ok(Snapshot {
        entries,
        old_sizes,
        new_sizes,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits until every non-sleepable BPF program that was running when it
/// was called has finished: an update of a map-in-map slot makes the
/// bpf(2) call wait for an RCU grace period (the kernel's
/// `maybe_wait_bpf_programs`). tc programs run inside an RCU read-side
/// section, so after this returns a program swapped out before the call
/// runs nowhere.
pub fn wait_for_old_programs() -> sys::Result<()> {
    let inner = sysmap::create(&sysmap::MapCreate {
        map_type: MapType::Array as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        name: "tcbpf_rcu_in",
        ..Default::default()
    })?;
    let outer = sysmap::create(&sysmap::MapCreate {
        map_type: MapType::ArrayOfMaps as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        name: "tcbpf_rcu",
        inner_map_fd: Some(inner.as_fd()),
        ..Default::default()
    })?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&inner) as u32;
    sysmap::update(
        &outer,
        &0u32.to_ne_bytes(),
        &fd.to_ne_bytes(),
        sysmap::update::ANY,
    )
}

/// Adds the old program's writes since the copy to the new map.
/// `done`, the transaction's record of the keys reconciled so far (`sum`:
/// key → the old final value whose increments are added), lets a rerun
/// after a kill add only what is left; `point` names the checkpoint after
/// the first key.
pub(super) fn reconcile(
    mig: &Migration,
    snap: &Snapshot,
    old: &MapFd,
    new: &MapFd,
    done: &MapFd,
    point: &str,
) -> Result<(), String> {
    let fin = Entries::read(old, &snap.old_sizes).map_err(|e| e.to_string())?;
    match mig.mode {
        Mode::Sum => reconcile_sum(mig, snap, &fin, new, done, point),
        Mode::Copy => reconcile_copy(mig, snap, &fin, new),
        Mode::Fresh => Ok(()),
    }
}

fn read_uint(b: &[u8], size: usize) -> u64 {
    let mut v = [0u8; 8];
    if cfg!(target_endian = "little") {
        v[..size].copy_from_slice(&b[..size]);
        u64::from_le_bytes(v)
    } else {
        v[8 - size..].copy_from_slice(&b[..size]);
        u64::from_be_bytes(v)
    }
}

fn write_uint(b: &mut [u8], size: usize, x: u64) {
    if cfg!(target_endian = "little") {
        b[..size].copy_from_slice(&x.to_le_bytes()[..size]);
    } else {
        b[..size].copy_from_slice(&x.to_be_bytes()[8 - size..]);
    }
}

/// `sum`: new += convert(final − snapshot), counter by counter, with the
/// kernel's atomic add so the new program's own increments are kept; each
/// key's add and its record in `done` are one step (`sum_add`), so a kill
/// never leaves a key added but not recorded.
fn reconcile_sum(
    mig: &Migration,
    snap: &Snapshot,
    fin: &Entries,
    new: &MapFd,
    done: &MapFd,
    point: &str,
) -> Result<(), String> {
    let (os, ns) = (&snap.old_sizes, &snap.new_sizes);
    let mut first = true;
    let old_value = mig.value.old_size();
    let mut adder = None;
    let zero = vec![0u8; os.value()];
    // The walk order of an unchanged map is the same: compare by position,
    // and index the snapshot only when a key is not where it was.
    let mut index = None;
    for i in 0..fin.len() {
        let (k, fv) = (fin.key(i), fin.value(i));
        let sv = if i < snap.entries.len() && snap.entries.key(i) == k {
            snap.entries.value(i)
        } else {
            let index = index.get_or_insert_with(|| snap.entries.index());
            match index.get(k) {
                Some(&j) => snap.entries.value(j),
                None => &zero,
            }
        };
        if sv == fv {
            continue;
        }
        // The delta of every counter, summed over CPUs, in the old layout.
        let mut delta = vec![0u8; old_value];
        let mut any = false;
        for &(off, size) in &mig.old_counters {
            let mut d: u64 = 0;
            for cpu in 0..os.cpus().max(1) {
                let base = cpu * os.cpu_stride() + off;
                let f = read_uint(&fv[base..], size);
                let s = read_uint(&sv[base..], size);
                d = d.wrapping_add(f.wrapping_sub(s));
            }
            if size < 8 {
                d &= (1u64 << (size * 8)) - 1;
            }
            any |= d != 0;
            write_uint(&mut delta[off..], size, d);
        }
        if !any {
            continue;
        }
        let mut nd = vec![0u8; mig.value.new_size()];
        mig.value
            .convert(&delta, &mut nd)
            .map_err(|e| e.to_string())?;
        let deltas: Vec<u64> = mig
            .new_counters
            .iter()
            .map(|&(off, size)| read_uint(&nd[off..], size))
            .collect();
        let adder = match &mut adder {
            Some(a) => a,
            None => adder.insert(SumAdd::new(
                &Maps {
                    new,
                    done,
                    record_size: os.value(),
                    insert_size: ns.cpu_stride(),
                },
                ns.key(),
                &mig.new_counters,
            )?),
        };
        // A key the new map lacks gets the delta as its value (on one CPU).
        adder.apply(k, &deltas, fv, &nd)?;
        if std::mem::take(&mut first) {
            super::checkpoint::reached(point);
        }
    }
    Ok(())
}

/// `copy`: for every key whose old value changed since the copy, the old
/// final value goes in unless the new map no longer holds what was copied
/// (the new program wrote it since the swap).
fn reconcile_copy(
    mig: &Migration,
    snap: &Snapshot,
    fin: &Entries,
    new: &MapFd,
) -> Result<(), String> {
    let (os, ns) = (&snap.old_sizes, &snap.new_sizes);
    let snap_index = snap.entries.index();
    let fin_index = fin.index();
    let mut keys: Vec<&[u8]> = (0..fin.len()).map(|i| fin.key(i)).collect();
    keys.extend(
        (0..snap.entries.len())
            .map(|i| snap.entries.key(i))
            .filter(|k| !fin_index.contains_key(k)),
    );
    let mut current = vec![0u8; ns.value()];
    for k in keys {
        let before = snap_index.get(k).map(|&j| snap.entries.value(j));
        let after = fin_index.get(k).map(|&j| fin.value(j));
        if before == after {
            continue;
        }
        let expected = match before {
            Some(v) => Some(convert_value(&mig.value, v, os, ns).map_err(|e| e.to_string())?),
            None => None,
        };
        let now = match sysmap::lookup(new, k, &mut current, 0) {
            Ok(()) => Some(current.clone()),
            Err(e) if e.errno() == Some(libc::ENOENT) => None,
            Err(e) => return Err(e.to_string()),
        };
        if now != expected {
            continue; // the new program wrote it: its value wins
        }
        match after {
            Some(v) => {
                let nv = convert_value(&mig.value, v, os, ns).map_err(|e| e.to_string())?;
                sysmap::update(new, k, &nv, sysmap::update::ANY).map_err(|e| e.to_string())?;
            }
            None => match sysmap::delete(new, k) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e.to_string()),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The reconciliation rules on real maps (root), the old and the new
    //! program's writes made by hand between the copy and the reconcile.
    use super::*;
    use crate::btf::BtfBuilder;
    use crate::upgrade::plan::{plan_map, Action, MapSide};

    fn migration(mode: Mode) -> Migration {
        let mut b = BtfBuilder::new();
        let u32t = b.int("__u32", 4, false);
        let u64t = b.int("__u64", 8, false);
        let v1 = b.structure("c", 16, &[("packets", u64t, 0, 0), ("bytes", u64t, 64, 0)]);
        let v2 = b.structure(
            "c",
            24,
            &[
                ("packets", u64t, 0, 0),
                ("bytes", u64t, 64, 0),
                ("drops", u64t, 128, 0),
            ],
        );
        let btf = b.build();
        let side = |v, size| MapSide {
            name: "counters",
            map_type: MapType::Hash,
            key_size: 4,
            value_size: size,
            max_entries: 16,
            flags: 0,
            btf: Some((&btf, u32t, v)),
            global_data: false,
        };
        match plan_map(Some(&side(v1, 16)), &side(v2, 24), Some(mode)) {
            Action::Migrate(m) => *m,
            other => panic!("{other:?}"),
        }
    }

    fn hash(value_size: u32) -> MapFd {
        sysmap::create(&sysmap::MapCreate {
            map_type: MapType::Hash as u32,
            key_size: 4,
            value_size,
            max_entries: 16,
            name: "upg_test",
            ..Default::default()
        })
        .unwrap()
    }

    fn put(m: &MapFd, key: u32, vals: &[u64]) {
        let v: Vec<u8> = vals.iter().flat_map(|x| x.to_ne_bytes()).collect();
        sysmap::update(m, &key.to_ne_bytes(), &v, 0).unwrap();
    }

    fn get(m: &MapFd, key: u32) -> Option<Vec<u64>> {
        let mut v = vec![0u8; 24];
        match sysmap::lookup(m, &key.to_ne_bytes(), &mut v, 0) {
            Ok(()) => Some(
                v.chunks(8)
                    .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
                    .collect(),
            ),
            Err(_) => None,
        }
    }

    /// Copies {1: 10/100, 2: 20/200, 3: 30/300}, then the old program
    /// counts 5 packets on key 1, adds key 4 and deletes key 3, and
    /// changes key 2; the new program writes key 2.
    fn run(mode: Mode) -> MapFd {
        run_recorded(mode).0
    }

    /// `run`, returning the `done` record too.
    fn run_recorded(mode: Mode) -> (MapFd, MapFd) {
        let mig = migration(mode);
        let (old, new, done) = (hash(16), hash(24), hash(16));
        put(&old, 1, &[10, 100]);
        put(&old, 2, &[20, 200]);
        put(&old, 3, &[30, 300]);
        let snap = copy("counters", &mig, &old, &new).unwrap();
        assert_eq!(get(&new, 1), Some(vec![10, 100, 0]));
        put(&old, 1, &[15, 150]);
        put(&old, 4, &[1, 10]);
        sysmap::delete(&old, &3u32.to_ne_bytes()).unwrap();
        put(&old, 2, &[21, 210]);
        put(&new, 2, &[25, 250, 7]);
        reconcile(&mig, &snap, &old, &new, &done, "test").unwrap();
        (new, done)
    }

    #[test]
    fn sum_records_each_key_it_added_with_the_old_final_value() {
        tcbpf_testkit::require_root!();
        let (_, done) = run_recorded(Mode::Sum);
        let got = |k| get(&done, k).map(|v| v[..2].to_vec());
        assert_eq!(got(1), Some(vec![15, 150]));
        assert_eq!(got(2), Some(vec![21, 210]));
        assert_eq!(got(3), None, "a key deleted from the old map adds nothing");
        assert_eq!(got(4), Some(vec![1, 10]), "inserted, and recorded");
    }

    #[test]
    fn sum_adds_the_old_programs_increments_to_what_the_new_one_counted() {
        tcbpf_testkit::require_root!();
        let new = run(Mode::Sum);
        assert_eq!(get(&new, 1), Some(vec![15, 150, 0]));
        assert_eq!(get(&new, 2), Some(vec![26, 260, 7]), "25 + (21 - 20)");
        assert_eq!(get(&new, 3), Some(vec![30, 300, 0]), "deleted keys stay");
        assert_eq!(get(&new, 4), Some(vec![1, 10, 0]));
    }

    #[test]
    fn copy_gives_the_old_final_value_where_the_new_program_did_not_write() {
        tcbpf_testkit::require_root!();
        let new = run(Mode::Copy);
        assert_eq!(get(&new, 1), Some(vec![15, 150, 0]));
        assert_eq!(
            get(&new, 2),
            Some(vec![25, 250, 7]),
            "the new program's write wins"
        );
        assert_eq!(get(&new, 3), None, "deleted by the old program");
        assert_eq!(get(&new, 4), Some(vec![1, 10, 0]));
    }
}
