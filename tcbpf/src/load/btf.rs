//! BTF upload: the object's BTF (fixed up at parse time) sanitized for the
//! kernel and loaded with BTF_LOAD. When the kernel refuses it the object
//! loads without BTF, and a note says why.

use super::Context;
use crate::elf::ObjectSpec;
use crate::sys::BtfFd;

/// Uploads `spec`'s BTF; `None` when the object has none or the kernel
/// refused it.
pub(crate) fn upload(ctx: &mut Context<'_>, spec: &ObjectSpec) -> Option<BtfFd> {
    let mut btf = spec.btf.clone()?;
    if let Err(e) = btf.sanitize_for_kernel() {
        ctx.notes.push(format!(
            "BTF: cannot prepare it for the kernel ({e}); loading without BTF"
        ));
        return None;
    }
    match crate::sys::btf::load(&btf.to_bytes()) {
        Ok(fd) => Some(fd),
        Err(e) => {
            ctx.notes.push(format!(
                "BTF: the kernel refused it ({e}); loading without BTF"
            ));
            None
        }
    }
}
