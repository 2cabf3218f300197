#!/usr/bin/env bash
# Builds tcbpf (release) and installs everything an operator needs:
#   BINDIR   tcbpf, tcbpf-exporter, tcbpf-sync, tcbpf-dump
#   MANDIR   man8/tcbpf*.8.gz        (made by `tcbpf gen man`)
#   DATADIR  bash-completion/completions/tcbpf, zsh/…/_tcbpf,
#            fish/vendor_completions.d/tcbpf.fish (`tcbpf gen completions`)
#   UNITDIR  tcbpf-keeper.{service,socket}, tcbpf-keeper-import.socket,
#            tcbpf-exporter.service, tcbpf-sync.service (ExecStart= set to
#            BINDIR)
#   DOCDIR   README.md, the licences, keeper.policy (an example), and
#            docs/*.md beside the README (its links lead there)
#
#   [PREFIX=/usr/local] [DESTDIR=] scripts/install.sh [ --no-build | --uninstall ]
#
# PREFIX (default /usr/local) is where the files live at run time; DESTDIR
# (default empty) is prepended to every path written, for staging a package
# (scripts/build-deb.sh). BINDIR, MANDIR, DATADIR, UNITDIR and DOCDIR
# default to PREFIX/bin, PREFIX/share/man, PREFIX/share, PREFIX/lib/systemd/
# system (systemd reads /usr/local/lib/systemd/system too) and
# PREFIX/share/doc/tcbpf. --no-build installs the binaries found in
# TCBPF_BIN_DIR (default target/release) without running cargo;
# --uninstall removes what an install with the same settings wrote.
# Units are installed, not enabled (see the comments at their top).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=install
case "${1:-}" in
    "") ;;
    --no-build) mode=no-build ;;
    --uninstall) mode=uninstall ;;
    *)
        echo "usage: [PREFIX=DIR] [DESTDIR=DIR] scripts/install.sh [ --no-build | --uninstall ]" >&2
        exit 2
        ;;
esac

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-$PREFIX/bin}
MANDIR=${MANDIR:-$PREFIX/share/man}
DATADIR=${DATADIR:-$PREFIX/share}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/tcbpf}
# Debian's zsh reads vendor completions from /usr/share/zsh/vendor-completions;
# under any other prefix, site-functions is on zsh's default fpath.
if [ "$PREFIX" = /usr ]; then
    ZSHDIR=${ZSHDIR:-$DATADIR/zsh/vendor-completions}
else
    ZSHDIR=${ZSHDIR:-$DATADIR/zsh/site-functions}
fi
BINS=(tcbpf tcbpf-exporter tcbpf-sync tcbpf-dump)
UNITS=(contrib/systemd/*.service contrib/systemd/*.socket)
COMPLETIONS=(
    "bash:$DATADIR/bash-completion/completions/tcbpf"
    "zsh:$ZSHDIR/_tcbpf"
    "fish:$DATADIR/fish/vendor_completions.d/tcbpf.fish"
)
DOCS=(README.md LICENSE-GPL-2.0 LICENSE-BSD-2-Clause contrib/systemd/keeper.policy)

if [ "$mode" = uninstall ]; then
    for b in "${BINS[@]}"; do rm -f "$DESTDIR$BINDIR/$b"; done
    rm -f "$DESTDIR$MANDIR"/man8/tcbpf.8.gz "$DESTDIR$MANDIR"/man8/tcbpf-*.8.gz
    for c in "${COMPLETIONS[@]}"; do rm -f "$DESTDIR${c#*:}"; done
    for u in "${UNITS[@]}"; do rm -f "$DESTDIR$UNITDIR/$(basename "$u")"; done
    for d in "${DOCS[@]}"; do rm -f "$DESTDIR$DOCDIR/$(basename "$d")"; done
    rm -f "$DESTDIR$DOCDIR"/docs/*.md "$DESTDIR$DOCDIR"/docs/*.md.gz
    rmdir "$DESTDIR$DOCDIR/docs" 2>/dev/null || true
    rmdir "$DESTDIR$DOCDIR" 2>/dev/null || true
    echo "install.sh: removed tcbpf from $DESTDIR$PREFIX"
    exit 0
fi

bin_dir=${TCBPF_BIN_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/release}
if [ "$mode" = install ]; then
    echo "install.sh: cargo build --release (tcbpf, tcbpf-exporter, tcbpf-sync, tcbpf-dump)…" >&2
    cargo build --release --locked -q -p tcbpf-cli -p tcbpf-exporter -p tcbpf-sync -p tcbpf-dump --bins
fi
for b in "${BINS[@]}"; do
    if [ ! -x "$bin_dir/$b" ]; then
        echo "install.sh: $bin_dir/$b is missing (build it, or run without --no-build)" >&2
        exit 1
    fi
done

for b in "${BINS[@]}"; do
    install -D -m 0755 "$bin_dir/$b" "$DESTDIR$BINDIR/$b"
done

# Man pages and completions come from the binary just built (its help
# texts and keyword tables); the helper pages ask the helpers beside it.
tcbpf=$bin_dir/tcbpf
install -d -m 0755 "$DESTDIR$MANDIR/man8"
for page in $("$tcbpf" gen man); do
    "$tcbpf" gen man "$page" | gzip -9n >"$DESTDIR$MANDIR/man8/$page.8.gz"
    chmod 0644 "$DESTDIR$MANDIR/man8/$page.8.gz"
done
for c in "${COMPLETIONS[@]}"; do
    install -d -m 0755 "$(dirname "$DESTDIR${c#*:}")"
    "$tcbpf" gen completions "${c%%:*}" >"$DESTDIR${c#*:}"
    chmod 0644 "$DESTDIR${c#*:}"
done

install -d -m 0755 "$DESTDIR$UNITDIR"
for u in "${UNITS[@]}"; do
    sed "s|/usr/local/bin/|$BINDIR/|g" "$u" >"$DESTDIR$UNITDIR/$(basename "$u")"
    chmod 0644 "$DESTDIR$UNITDIR/$(basename "$u")"
done

for d in "${DOCS[@]}"; do
    install -D -m 0644 "$d" "$DESTDIR$DOCDIR/$(basename "$d")"
done
for page in docs/*.md; do
    install -D -m 0644 "$page" "$DESTDIR$DOCDIR/$page"
done

echo "install.sh: installed tcbpf under $DESTDIR$PREFIX (binaries in $BINDIR, units in $UNITDIR)"
