//! `tcbpf map …`: the map helper for shell scripts. One file per idea:
//! [`args`] reads DATA and TYPES words, [`entry`] writes entries as text or
//! JSON, [`walk`] reads whole maps fast, [`elem`] holds the one-element verbs, [`dump`] and [`load`] the bulk
//! ones, [`admin`] show/create/freeze/pin. `export` belongs to `map_export`.
//!
//! Nothing here probes privileges: a map held by descriptor (`fd`, `env`)
//! is used as it is, so scripts without CAP_BPF work on what they hold.

mod add;
pub(crate) mod admin;
mod args;
mod batch;
pub(crate) mod commit;
pub(crate) mod dump;
pub(crate) mod elem;
mod entry;
pub(crate) mod events;
pub(crate) mod load;
pub(crate) mod load_json;
mod typed;
mod typed_in;

use super::error::CliError;
use super::output::Global;
use super::words::{keywords, Words};

/// `tcbpf map help`.
pub const USAGE: &str = "\
Usage: tcbpf map show [MAP]
       tcbpf map create type TYPE key BYTES value BYTES entries N
                        [flags N] [name NAME] [pin PATH]
       tcbpf map lookup MAP key DATA [value TYPES] [sum] [lock] [raw]
       tcbpf map update MAP key DATA value DATA [any|exist|noexist] [lock] [partial]
       tcbpf map add    MAP key DATA [field NAME | at OFFSET TYPE] value N
       tcbpf map delete MAP key DATA
       tcbpf map dump   MAP [key TYPES] [value TYPES] [sum] [raw]
       tcbpf map next   MAP [key DATA] [raw]
       tcbpf map push   MAP value DATA [exist] [partial]
       tcbpf map { pop | peek } MAP [value TYPES] [raw]
       tcbpf map freeze MAP
       tcbpf map pin    MAP PATH
       tcbpf map load   MAP key TYPES value TYPES [from FILE|-] [any|exist|noexist]
                        [replace]
       tcbpf map load   MAP json [from FILE|-] [replace] [partial]
       tcbpf map commit OUTER [slot N] { key TYPES value TYPES | json [partial] }
                        [from FILE|-] [keep N] [plan]
       tcbpf map commit OUTER [slot N] previous
       tcbpf map export UDS MAP [id N] [MAP [id N]]… [obj NAME] [allow-uid UID]…
                        [entry-size 20|24|28|36]
       tcbpf map batch  [from FILE|-]
       tcbpf map events MAP [value TYPES | type NAME [btf FILE]] [count N]
                        [timeout SECS] [pages N]
       tcbpf map watch  { MAP | dev DEV [ingress|egress] }… [interval SECS]
                        [sort FIELD] [top N] [count N] [key TYPES] [value TYPES]

MAP   := fd N | env { ID | NAME } | id N | pinned PATH | name NAME
       | keeper SOCK [SET/]MAP
DATA  := { TYPE VALUE | hex BYTES… | BYTE }…      (sizes checked exactly)
       | json JSON | VALUE | { MEMBER VALUE }…    (in the map's own types)
TYPES := TYPE…
TYPE  := u8 u16 u32 u64 i8 i16 i32 i64 be16 be32 be64 ip4 ip6 mac str bytes

  env 3 reads BPF_MAP3, env NAME reads BPF_MAP_<NAME> (upper-cased).
  keeper SOCK asks a keeper (read-only for commands that only read).
  A bare BYTE is decimal or 0x hex; after 'hex' words are hex bytes.
  str and bytes take what the other fields leave of the key or value.
  Per-CPU maps: update takes one value for all CPUs or one per CPU;
  lookup and dump show one value per CPU, or their sum with 'sum'.
  load reads one entry per line: one word per key type, then one per
  value type ('key:' and 'value:' words are skipped, so typed dump
  output loads back). Without 'from', load reads standard input.
  watch shows counters and their rates per second, live on a terminal,
  else one snapshot per interval (see 'tcbpf map watch help').
  A map created without 'pin' is freed when tcbpf exits.
  events reads a ringbuf or perf_event_array map (one perf ring of 'pages'
  pages, default 16, per CPU, stored in the array): one line per event as
  it arrives (perf: 'cpu N: ' first; -j: {\"value\":…} or
  {\"cpu\":N,\"value\":…}), typed by TYPES, by the BTF type NAME (from FILE,
  an object or raw BTF, else from the programs that use the map) or hex.
  Lost samples and a full ring buffer get lines of their own. It ends
  after 'count' events, 'timeout' seconds, Ctrl-C or SIGTERM (also while
  its output pipe is full) or a closed output pipe.
  export sends struct bpf_elf_map entries of entry-size bytes (default 36,
  as tc today; 20, 24 or 28 for importers built against older iproute2).

Typed by BTF: when a map has key/value BTF (read from the kernel by its
btf_id), lookup, dump, next, pop and peek print its own types without type
words: 'key: 17  value: {packets: 5, bytes: 6}', -j as bpftool formats
({\"key\":17,\"value\":{\"packets\":5,\"bytes\":6}}): structs by member name,
arrays, enums by name, char arrays as strings, bitfields, global data
(.data, .rodata, .bss) by variable name; per-CPU maps one value per CPU,
or with 'sum' each integer member added over CPUs. TYPES given for a side
win; 'raw' prints bpftool's hex. A map whose BTF the kernel will not give
prints untyped (-v says why). A pointer or function in the type cannot be
printed: use 'raw'.

Typed input: 'key json 17', 'value json {\"packets\":5,\"bytes\":6}' take the
shape -j prints (per-CPU: one value for all CPUs, or the \"values\" list).
With BTF, 'key 17' (one word: a number, enum name or string) and 'value
packets 5 bytes 6' (member words; 'in.port 80' for nested members) work
too. Words that start with a member name are members; otherwise a TYPE
word or 'hex' starts DATA, and several bare numbers are bytes as bpftool
takes them ('key 7 0 0 0'). Unknown or missing members (missing ones are
zero-filled with 'partial'), wrong kinds, out-of-range integers and
unknown enum names exit 2 naming the member ('value.in.port: 70000 is out
of range for u16').

load json reads what 'tcbpf -j map dump' prints (one JSON array) or one
{\"key\": …, \"value\": …} object per line, checks every entry, then writes
them all with UPDATE_BATCH; a bad entry writes nothing and names its line
('line 3: value.packets: -1 is out of range for u64'). 'replace' (json or
TYPES) makes the map equal to the input: keys not given are deleted
(zeroed in arrays), and it prints 'added A, changed C, unchanged U,
removed R' (-j: an object).

commit swaps a whole policy in one step: OUTER is an array_of_maps or
hash_of_maps whose slot (default 0) holds the inner hash map in force.
It reads entries as load does, checked against the inner map's sizes and
BTF (a bad line creates nothing, exit 2), builds a new inner map with the
inner map's attributes, fills it with UPDATE_BATCH, writes its generation
(one more than any known) under the all-ones key, and publishes it with
one update of the slot. It prints 'generation G in force at slot S (N
entries, map id I); replaced R; kept …' (-j: an object). 'keep N' pins
the replaced generation and keeps the N newest in OUTER's pin directory
(PATH_generations/SLOT/G; OUTER must be 'pinned PATH'); 'previous'
publishes the newest kept generation older than the one in force.
'plan' checks everything and prints what the commit would do (the
generation, entries, the new inner map's attributes) without creating
or changing anything.
'map show OUTER' shows each slot's map id and generation.

batch reads map commands one per line, as 'tcbpf map …' takes them
without 'tcbpf map' ('update pinned /sys/fs/bpf/x key 17 value 1',
'lookup env counters key 17'; quotes as in a shell), runs them in order
and writes each answer as soon as no more input is waiting, so a shell
can keep one tcbpf as a coproc. A failed command prints 'error: LINE N:
…' (-j: {\"error\": …, \"line\": N}) and the batch goes on; the exit status
is the first failure's. The MAPs of lookup, update and delete are opened
once (one descriptor per map); runs of updates or deletes of one map go in
one batch call each. Lines are at most 1 MiB; watch, and load from standard
input (the batch's own commands), are refused inside a batch.

Exit status: 0 success, 1 not found (key, map, pin, empty queue, env var),
2 usage or bad input, 3 permission denied, 4 any other failure.
";

/// Runs `tcbpf map …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let Some(verb) = w.next() else {
        eprint!("{USAGE}");
        return Err(CliError::usage(
            "expected a map command (see 'tcbpf map help')",
        ));
    };
    let verb = MapVerb::choose(&verb)?;
    // Most verbs open their MAP before reading the words after it: a word
    // of help anywhere is the usage, before anything is opened. `watch`
    // hands its words to tcbpf-exporter, which has its own help.
    if verb != MapVerb::Watch && w.help_ahead() {
        return Err(CliError::help());
    }
    match verb {
        MapVerb::Show => admin::show(g, w),
        MapVerb::Create => admin::create(g, w),
        MapVerb::Lookup => elem::lookup(g, w),
        MapVerb::Update => elem::update(w),
        MapVerb::Add => add::run(g, w),
        MapVerb::Delete => elem::delete(w),
        MapVerb::Dump => dump::run(g, w),
        MapVerb::Next => elem::next(g, w),
        MapVerb::Push => elem::push(w),
        MapVerb::Pop => elem::pop_or_peek(g, w, true),
        MapVerb::Peek => elem::pop_or_peek(g, w, false),
        MapVerb::Freeze => admin::freeze(w),
        MapVerb::Pin => admin::pin(w),
        MapVerb::Load => load::run(g, w),
        MapVerb::Commit => commit::run(g, w),
        MapVerb::Batch => batch::run(g, w),
        MapVerb::Events => events::run(g, w),
        MapVerb::Watch => {
            let mut args = vec!["watch".to_string()];
            args.extend(w.rest());
            super::external::exec(g, args)
        }
        MapVerb::Export => super::map_export::run(g, w),
    }
}

keywords! {
    /// The verbs of `tcbpf map`.
    pub(crate) enum MapVerb("map command") {
        Show = "show" | "list",
        Create = "create",
        Lookup = "lookup",
        Update = "update",
        Add = "add",
        Delete = "delete",
        Dump = "dump",
        Next = "next",
        Push = "push",
        Pop = "pop",
        Peek = "peek",
        Freeze = "freeze",
        Pin = "pin",
        Load = "load",
        Commit = "commit",
        Export = "export",
        Batch = "batch",
        Events = "events",
        Watch = "watch",
    }
}

/// An opened map with what the kernel says about it: the library's
/// handle (`tcbpf::front::Map`: info, types, the batch walker).
pub use tcbpf::front::Map as OpenMap;
