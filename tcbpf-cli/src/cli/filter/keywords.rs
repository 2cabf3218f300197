//! The keywords of `tcbpf filter …` and `tcbpf qdisc …`, one enum per
//! grammar position, in tc's order (the order an error message lists
//! them). Parsing in `args` matches on these exhaustively. No kernel calls.

use super::super::words::keywords;

keywords! {
    /// The verbs of `tcbpf filter`.
    pub(crate) enum FilterVerb("filter verb") {
        Add = "add",
        Replace = "replace",
        Delete = "del" | "delete",
        Show = "show" | "list",
        Upgrade = "upgrade",
    }
}

keywords! {
    /// The options of a filter line, before and around `bpf …`.
    pub(crate) enum FilterOption("filter option") {
        Dev = "dev",
        Ingress = "ingress",
        Egress = "egress",
        Parent = "parent",
        Tcx = "tcx",
        Pref = "pref" | "prio" | "priority",
        Handle = "handle",
        Protocol = "protocol",
        Chain = "chain",
        Bpf = "bpf",
        Link = "link",
        Before = "before",
        After = "after",
        Head = "head",
        Tail = "tail",
        Revision = "revision",
    }
}

keywords! {
    /// What `before` or `after` is relative to on a tcx hook.
    pub(crate) enum PositionWord("position") {
        Id = "id",
        Pinned = "pinned",
        Link = "link",
        Head = "head",
        Tail = "tail",
    }
}

keywords! {
    /// The options after `bpf` (`bytecode` and `bytecode-file` are
    /// matched before these, by tc's own rule).
    pub(crate) enum BpfOption("bpf option") {
        DirectAction = "da" | "direct-action",
        Classid = "classid" | "flowid",
        Obj = "obj" | "object-file",
        Pinned = "pinned" | "object-pinned" | "fd",
        Action = "action",
        Police = "police",
        SkipSw = "skip_sw",
        SkipHw = "skip_hw",
        Link = "link",
    }
}

keywords! {
    /// How `action bpf` names its program: pinned only.
    pub(crate) enum ActionProgram("action program") {
        Pinned = "pinned" | "object-pinned" | "fd",
    }
}

keywords! {
    /// The options after `obj FILE` (`entry-size` is matched before
    /// these: it needs three letters so that `e` stays tc's `export`).
    pub(crate) enum ObjOption("obj option") {
        Type = "type",
        Section = "sec" | "section",
        Program = "program",
        Export = "export",
        AllowUid = "allow-uid",
        MaxMemory = "max-memory",
        Verbose = "verbose",
    }
}

keywords! {
    /// The verbs of `tcbpf qdisc`.
    pub(crate) enum QdiscVerb("qdisc verb") { Add = "add", Delete = "del" | "delete" }
}

keywords! {
    /// The options of `tcbpf qdisc`.
    pub(crate) enum QdiscOption("qdisc option") { Dev = "dev", Clsact = "clsact" }
}

keywords! {
    /// The options of `filter upgrade`.
    pub(super) enum UpgradeOption("upgrade option") {
        Dev = "dev",
        Ingress = "ingress",
        Egress = "egress",
        Parent = "parent",
        Tcx = "tcx",
        Pref = "pref" | "prio" | "priority",
        Handle = "handle",
        Link = "link",
        Bpf = "bpf",
        Obj = "obj" | "object-file",
        Type = "type",
        Section = "sec" | "section",
        Program = "program",
        Plan = "plan",
        Map = "map",
        Export = "export",
        Verbose = "verbose",
    }
}

keywords! {
    /// How `map NAME …` carries a map across an upgrade.
    pub(super) enum UpgradeMode("map mode") { Copy = "copy", Sum = "sum", Fresh = "fresh" }
}
