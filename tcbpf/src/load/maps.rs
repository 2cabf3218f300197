//! Creating an object's maps (or reusing their pins): plain maps first,
//! then map-in-map outer maps with their inner template, then the inner
//! maps stored in their outer maps; global data filled (and `.rodata`
//! frozen) before any program sees it.

use super::pin::{check_compatible, pin_path, PinGuard};
use super::{Context, LoadError, LoadedMap, PinMismatch};
use crate::elf::{MapOrigin, MapSpec, ObjectSpec, SlotTarget};
use crate::sys::fs::ensure_bpffs;
use crate::sys::{self, map, BtfFd, MapFd};
use std::os::fd::{AsFd, BorrowedFd};

/// Creates (or opens from their pins) every map of `spec`, in object order.
pub(crate) fn create_all(
    ctx: &mut Context<'_>,
    spec: &ObjectSpec,
    btf: Option<&BtfFd>,
    guard: &mut PinGuard,
) -> Result<Vec<LoadedMap>, LoadError> {
    let mut loaded: Vec<Option<LoadedMap>> = (0..spec.maps.len()).map(|_| None).collect();
    for (i, m) in spec.maps.iter().enumerate() {
        if !m.is_map_in_map() {
            loaded[i] = Some(create_or_reuse(ctx, m, None, btf, guard)?);
        }
    }
    for (i, m) in spec.maps.iter().enumerate() {
        if !m.is_map_in_map() {
            continue;
        }
        let lm = if let Some(inner) = &m.inner {
            let inner = &with_defaults(ctx, inner)?;
            let template = create(ctx, inner, None, None)?;
            create_or_reuse(ctx, m, Some(template.as_fd()), btf, guard)?
        } else {
            let inner = spec
                .maps
                .iter()
                .position(|x| x.id == m.inner_id && !x.is_map_in_map() && m.inner_id != 0)
                .and_then(|j| loaded[j].as_ref())
                .ok_or_else(|| LoadError::Invalid {
                    file: ctx.file.clone(),
                    what: format!("map '{}'", m.name),
                    reason: format!(
                        "map-in-map without its inner map (no map with id {} in the object)",
                        m.inner_id
                    ),
                })?;
            let inner_fd = inner.fd.as_fd();
            create_or_reuse(ctx, m, Some(inner_fd), btf, guard)?
        };
        loaded[i] = Some(lm);
    }
    let loaded: Vec<LoadedMap> = loaded.into_iter().flatten().collect();
    place_legacy_inner_maps(ctx, spec, &loaded)?;
    place_btf_inner_maps(ctx, spec, &loaded)?;
    Ok(loaded)
}

/// Legacy map-in-map: a map whose id an outer map names as `inner_id` is
/// stored in that outer map at its own `inner_idx`.
fn place_legacy_inner_maps(
    ctx: &Context<'_>,
    spec: &ObjectSpec,
    loaded: &[LoadedMap],
) -> Result<(), LoadError> {
    for (i, inner) in spec.maps.iter().enumerate() {
        if inner.origin != MapOrigin::Legacy || inner.is_map_in_map() || inner.inner_idx == u32::MAX
        {
            continue;
        }
        for (j, outer) in spec.maps.iter().enumerate() {
            if !outer.is_map_in_map() || outer.inner_id == 0 || outer.inner_id != inner.id {
                continue;
            }
            store_fd(
                ctx,
                &loaded[j],
                inner.inner_idx,
                loaded[i].fd.as_fd(),
                &inner.name,
            )?;
        }
    }
    Ok(())
}

/// BTF map-in-map: the `values` initialisers naming maps.
fn place_btf_inner_maps(
    ctx: &Context<'_>,
    spec: &ObjectSpec,
    loaded: &[LoadedMap],
) -> Result<(), LoadError> {
    for (j, outer) in spec.maps.iter().enumerate() {
        for slot in &outer.initial_slots {
            if let SlotTarget::Map(i) = slot.target {
                let name = &spec.maps[i].name;
                store_fd(ctx, &loaded[j], slot.key, loaded[i].fd.as_fd(), name)?;
            }
        }
    }
    Ok(())
}

/// Stores descriptor `fd` (of `what`) at `key` in the fd-holding map `outer`.
pub(crate) fn store_fd(
    ctx: &Context<'_>,
    outer: &LoadedMap,
    key: u32,
    fd: BorrowedFd<'_>,
    what: &str,
) -> Result<(), LoadError> {
    let is_array = matches!(
        outer.spec.map_type,
        crate::abi::MapType::ArrayOfMaps | crate::abi::MapType::ProgArray
    );
    {
        if is_array && key >= outer.spec.max_entries {
            return Err(LoadError::Invalid {
                file: ctx.file.clone(),
                what: format!("map '{}'", outer.spec.name),
                reason: format!(
                    "cannot store '{what}' at index {key}: the array has {} entries",
                    outer.spec.max_entries
                ),
            });
        }
    }
    let value = (std::os::fd::AsRawFd::as_raw_fd(&fd) as u32).to_ne_bytes();
    map::update(&outer.fd, &key.to_ne_bytes(), &value, map::update::ANY).map_err(|e| {
        LoadError::Sys {
            file: ctx.file.clone(),
            what: format!(
                "storing '{what}' at index {key} of map '{}'",
                outer.spec.name
            ),
            source: e,
        }
    })
}

fn create_or_reuse(
    ctx: &mut Context<'_>,
    m: &MapSpec,
    inner: Option<BorrowedFd<'_>>,
    btf: Option<&BtfFd>,
    guard: &mut PinGuard,
) -> Result<LoadedMap, LoadError> {
    let m = &with_defaults(ctx, m)?;
    if let Some((_, id)) = ctx.given_maps.iter().find(|(n, _)| *n == m.name) {
        return given(ctx, m, *id);
    }
    if let Some((_, shared)) = ctx.shared_maps.iter().find(|(name, _)| *name == m.name) {
        let fd = shared.try_clone().map_err(|e| LoadError::Sys {
            file: ctx.file.clone(),
            what: format!("shared map '{}'", m.name),
            source: e,
        })?;
        return Ok(LoadedMap {
            spec: m.clone(),
            fd,
            pin_path: None,
            reused: true,
        });
    }
    if ctx.defer_pins {
        let fd = create(ctx, m, inner, btf)?;
        return Ok(LoadedMap {
            spec: m.clone(),
            fd,
            pin_path: None,
            reused: false,
        });
    }
    let path = pin_path(ctx.bpffs, &ctx.sha1_hex, m, &ctx.pinning_db);
    if m.pinning != crate::elf::Pinning::None && path.is_none() {
        ctx.notes.push(format!(
            "map '{}': pinning {} is not in the pinning table, not pinned",
            m.name,
            m.pinning.raw()
        ));
    }
    let Some(path) = path else {
        let fd = create(ctx, m, inner, btf)?;
        return Ok(LoadedMap {
            spec: m.clone(),
            fd,
            pin_path: None,
            reused: false,
        });
    };
    if !ctx.bpffs_ready {
        ensure_bpffs(ctx.bpffs).map_err(|e| LoadError::Sys {
            file: ctx.file.clone(),
            what: format!("bpffs {}", ctx.bpffs.display()),
            source: e,
        })?;
        ctx.bpffs_ready = true;
    }
    for attempt in 0..2 {
        if path.symlink_metadata().is_ok() {
            return reuse(ctx, m, &path);
        }
        let fd = create(ctx, m, inner, btf)?;
        match guard.pin(&fd, &path) {
            Ok(()) => {
                return Ok(LoadedMap {
                    spec: m.clone(),
                    fd,
                    pin_path: Some(path),
                    reused: false,
                })
            }
            // Another loader pinned it between our check and our pin.
            Err(e) if e.errno() == Some(libc::EEXIST) && attempt == 0 => continue,
            Err(e) => {
                return Err(LoadError::Sys {
                    file: ctx.file.clone(),
                    what: format!("map '{}'", m.name),
                    source: e,
                })
            }
        }
    }
    reuse(ctx, m, &path)
}

/// The caller's map `id` for `m`, checked to have `m`'s definition.
fn given(ctx: &mut Context<'_>, m: &MapSpec, id: u32) -> Result<LoadedMap, LoadError> {
    let sys_err = |e: sys::Error| LoadError::Sys {
        file: ctx.file.clone(),
        what: format!("map '{}' (given as map id {id})", m.name),
        source: e,
    };
    let fd = sys::obj::map_by_id(id, 0).map_err(sys_err)?;
    let info = sys::info::map_info(&fd).map_err(sys_err)?;
    check_compatible(&info, m).map_err(|(given, wanted)| LoadError::Invalid {
        file: ctx.file.clone(),
        what: format!("map '{}'", m.name),
        reason: format!("the map given (id {id}: {given}) is not the object's ({wanted})"),
    })?;
    ctx.notes
        .push(format!("map '{}': using map id {id} as it is", m.name));
    Ok(LoadedMap {
        spec: m.clone(),
        fd,
        pin_path: None,
        reused: true,
    })
}

/// `m` with the defaults libbpf applies (see `map_defaults`).
fn with_defaults(ctx: &mut Context<'_>, m: &MapSpec) -> Result<MapSpec, LoadError> {
    super::map_defaults::apply(m, &mut ctx.notes).map_err(|reason| LoadError::Invalid {
        file: ctx.file.clone(),
        what: format!("map '{}'", m.name),
        reason,
    })
}

fn reuse(
    ctx: &mut Context<'_>,
    m: &MapSpec,
    path: &std::path::Path,
) -> Result<LoadedMap, LoadError> {
    let sys_err = |e: sys::Error| LoadError::Sys {
        file: ctx.file.clone(),
        what: format!("map '{}'", m.name),
        source: e,
    };
    // Something other than a map where the pin should be is bad input:
    // say what it is.
    let not_a_map = |reason: String| LoadError::Invalid {
        file: ctx.file.clone(),
        what: format!("map '{}'", m.name),
        reason: format!(
            "{} is where its pin should be, but {reason} (remove it, or load with another bpffs)",
            path.display()
        ),
    };
    if let Some(reason) = sys::obj::not_a_pin(path) {
        return Err(not_a_map(reason));
    }
    let fd = match sys::obj::get_pinned(path, sys::obj::open::RDWR) {
        Ok(fd) => fd,
        Err(e) => {
            return Err(match sys::obj::not_a_pin(path) {
                Some(reason) => not_a_map(reason),
                None => sys_err(e),
            })
        }
    };
    let fd = sys::MapFd::from_owned(fd).map_err(|e| {
        let what = e.to_string();
        let kind = if what.contains("bpf-prog") {
            "a bpf program is pinned there".to_string()
        } else if what.contains("bpf-link") || what.contains("bpf_link") {
            "a bpf link is pinned there".to_string()
        } else {
            format!("the pinned object is not a map ({what})")
        };
        not_a_map(kind)
    })?;
    let info = sys::info::map_info(&fd).map_err(sys_err)?;
    check_compatible(&info, m).map_err(|(pinned, wanted)| {
        LoadError::PinMismatch(Box::new(PinMismatch {
            file: ctx.file.clone(),
            map: m.name.clone(),
            path: path.to_path_buf(),
            pinned,
            wanted,
        }))
    })?;
    ctx.notes.push(format!(
        "map '{}': reusing the pin at {}",
        m.name,
        path.display()
    ));
    Ok(LoadedMap {
        spec: m.clone(),
        fd,
        pin_path: Some(path.to_path_buf()),
        reused: true,
    })
}

/// BPF_MAP_CREATE for `m`, with BTF types when there are some and the map
/// type takes them (retrying without when the kernel refuses them), then
/// the global data filled and frozen.
fn create(
    ctx: &mut Context<'_>,
    m: &MapSpec,
    inner: Option<BorrowedFd<'_>>,
    btf: Option<&BtfFd>,
) -> Result<MapFd, LoadError> {
    let mut req = map::MapCreate {
        map_type: m.map_type as u32,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        map_flags: m.flags,
        name: &m.name,
        inner_map_fd: inner,
        numa_node: m.numa_node,
        btf: None,
        map_extra: m.map_extra,
    };
    let with_btf = btf.filter(|_| {
        m.map_type.takes_btf_types() && (m.btf_key_type_id != 0 || m.btf_value_type_id != 0)
    });
    let created = match with_btf {
        Some(b) => {
            req.btf = Some((b.as_fd(), m.btf_key_type_id, m.btf_value_type_id));
            match map::create(&req) {
                Ok(fd) => Ok(fd),
                Err(e) => {
                    ctx.notes.push(format!(
                        "map '{}': kernel refused its BTF types ({e}), created without",
                        m.name
                    ));
                    req.btf = None;
                    map::create(&req)
                }
            }
        }
        None => map::create(&req),
    };
    let fd = created.map_err(|e| LoadError::Sys {
        file: ctx.file.clone(),
        what: format!("map '{}' ({})", m.name, m.definition()),
        source: e,
    })?;
    if let Some(data) = &m.data {
        let err = |e: sys::Error| LoadError::Sys {
            file: ctx.file.clone(),
            what: format!("global data '{}'", m.name),
            source: e,
        };
        map::update(&fd, &0u32.to_ne_bytes(), data, map::update::ANY).map_err(err)?;
        if m.freeze {
            map::freeze(&fd).map_err(err)?;
        }
    }
    Ok(fd)
}
