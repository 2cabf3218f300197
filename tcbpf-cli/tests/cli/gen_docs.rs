//! Man pages and completions come from the parser's own tables
//! (`tcbpf gen …`): every word bash completion offers is one the parser
//! accepts at that position, and every line `help` prints is in the man
//! page of its command. Driven as a user meets them: bash sources the
//! script and runs its completion function, man renders the page.

use std::path::Path;
use std::process::{Command, Stdio};
use tcbpf_testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_tcbpf");

fn tcbpf(args: &[&str]) -> String {
    tcbpf_testkit::ok(tcbpf_testkit::tcbpf(BIN, args, None))
}

/// What bash's completion offers after `typed` (the current word empty
/// unless `cur` says otherwise), by sourcing the generated script and
/// calling the function `complete -p tcbpf` names.
fn bash_complete(script: &Path, typed: &[&str], cur: &str) -> Vec<String> {
    let mut words = vec![format!("'{BIN}'")];
    words.extend(typed.iter().map(|w| format!("'{w}'")));
    words.push(format!("'{cur}'"));
    let program = format!(
        "source '{}'\n\
         spec=$(complete -p tcbpf) || exit 3\n\
         fn=${{spec#*-F }}; fn=${{fn%% *}}\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={}\n\
         \"$fn\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words.join(" "),
        typed.len() + 1
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash completion failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Runs `tcbpf TYPED… WORD @@` (the last word makes every command stop at
/// parsing; a command that waits, like `exec bpf import`, is ended after a
/// second) and fails when the parser refused WORD itself.
fn assert_parser_accepts(dir: &Path, typed: &[&str], word: &str) {
    let mut args: Vec<&str> = typed.to_vec();
    args.push(word);
    args.push("@@");
    let out = Command::new("timeout")
        .args(["-s", "KILL", "2", BIN])
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    for refusal in [
        format!("'{word}' (expected"),
        format!("'{word}' (could be"),
        format!("unknown option '{word}'"),
    ] {
        assert!(
            !err.contains(&refusal),
            "completion offered '{word}' after {typed:?}, the parser refused it: {err}"
        );
    }
}

#[test]
fn every_word_bash_completion_offers_is_accepted_by_the_parser() {
    let dir = TempDir::new("gen-bash");
    let script = dir.0.join("tcbpf.bash");
    std::fs::write(&script, tcbpf(&["gen", "completions", "bash"])).unwrap();

    // The example: `tcbpf map d<TAB>`.
    assert_eq!(
        bash_complete(&script, &["map"], "d"),
        vec!["delete".to_string(), "dump".to_string()]
    );
    // Prefixes resolve as the parser resolves them.
    assert_eq!(
        bash_complete(&script, &["m"], "d"),
        bash_complete(&script, &["map"], "d")
    );

    // Every position reachable in two words, plus a few deeper ones.
    let top = bash_complete(&script, &[], "");
    assert!(top.contains(&"map".to_string()) && top.contains(&"-json".to_string()));
    let mut prefixes: Vec<Vec<String>> = vec![Vec::new()];
    for word in top.iter().filter(|w| !w.starts_with('-') && *w != "help") {
        prefixes.push(vec![word.clone()]);
        for next in bash_complete(&script, &[word.as_str()], "") {
            if next != "help" {
                prefixes.push(vec![word.clone(), next]);
            }
        }
    }
    for deeper in [
        &["-j", "map"][..],
        &["-n", "tcbpf-nons", "filter"],
        &["filter", "add", "dev", "tcbpf-nodev0"],
        &["demo", "watch"],
    ] {
        prefixes.push(deeper.iter().map(|w| w.to_string()).collect());
    }
    let mut checked = 0;
    for prefix in &prefixes {
        let typed: Vec<&str> = prefix.iter().map(String::as_str).collect();
        for word in bash_complete(&script, &typed, "") {
            assert_parser_accepts(&dir.0, &typed, &word);
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} words checked");
}

/// `page` rendered by man as a reader sees it (wide, so nothing wraps).
fn rendered(dir: &Path, page: &str) -> String {
    let file = dir.join(format!("{page}.8"));
    std::fs::write(&file, tcbpf(&["gen", "man", page])).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("LC_ALL", "C.UTF-8")
        .env("MANWIDTH", "250")
        .env("MAN_KEEP_FORMATTING", "")
        .stderr(Stdio::piped())
        .output()
        .expect("man (man-db; scripts/setup.sh installs it)");
    assert!(out.status.success(), "man -l {page}");
    assert!(
        out.stderr.is_empty(),
        "man warns on {page}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_line_help_prints_is_in_the_man_page() {
    let dir = TempDir::new("gen-man");
    let pages: &[(&str, &[&[&str]])] = &[
        ("tcbpf", &[&["help"]]),
        ("tcbpf-map", &[&["map", "help"]]),
        (
            "tcbpf-filter",
            &[&["filter", "help"], &["qdisc", "help"], &["chain", "help"]],
        ),
        ("tcbpf-exec", &[&["exec", "help"], &["exec", "bpf", "help"]]),
        ("tcbpf-obj", &[&["obj", "help"]]),
        ("tcbpf-keeper", &[&["keeper", "help"]]),
        ("tcbpf-demo", &[&["demo", "help"]]),
    ];
    // The helpers' pages, when the helpers are built beside tcbpf (the
    // workspace build of scripts/test.sh makes them).
    let beside = Path::new(BIN).parent().unwrap();
    let mut pages = pages.to_vec();
    let helpers: &[(&str, &[&[&str]])] = &[
        (
            "tcbpf-exporter",
            &[&["exporter", "help"], &["map", "watch", "help"]],
        ),
        ("tcbpf-sync", &[&["sync", "help"]]),
        ("tcbpf-dump", &[&["dump", "help"]]),
    ];
    for (page, helps) in helpers {
        if beside.join(page).is_file() {
            pages.push((page, helps));
        } else {
            eprintln!("SKIP man {page}: {page} is not built beside tcbpf");
        }
    }
    let listed = tcbpf(&["gen", "man"]);
    for (page, helps) in &pages {
        assert!(listed.lines().any(|l| l == *page), "{page} not listed");
        let man = rendered(&dir.0, page);
        for help in helps.iter() {
            let text = tcbpf(help);
            assert!(text.starts_with("Usage:"), "{help:?}: {text}");
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                assert!(
                    man.lines().any(|m| m.contains(line)),
                    "'tcbpf {}' prints a line man {page} lacks: {line}",
                    help.join(" ")
                );
            }
        }
        // The keyword tables are listed with their synonyms.
        if *page == "tcbpf-map" {
            assert!(man.contains("show | list"), "{man}");
        }
    }
}

#[test]
fn unknown_page_and_shell_are_refused_with_the_choices() {
    let out = Command::new(BIN)
        .args(["gen", "man", "tcbpf-nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcbpf-map"));
    let out = Command::new(BIN)
        .args(["gen", "completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash, zsh, fish"));
}

fn have(shell: &str) -> bool {
    Command::new(shell)
        .args(["-c", "exit 0"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn fish_completion_offers_the_parsers_words_and_files_elsewhere() {
    if !have("fish") {
        eprintln!("SKIP fish_completion_offers_the_parsers_words_and_files_elsewhere: no fish");
        return;
    }
    let dir = TempDir::new("gen-fish");
    let script = dir.0.join("tcbpf.fish");
    std::fs::write(&script, tcbpf(&["gen", "completions", "fish"])).unwrap();
    std::fs::write(dir.0.join("some.o"), b"").unwrap();
    let complete = |line: &str| -> Vec<String> {
        let out = Command::new("fish")
            .args(["--no-config", "-c"])
            .arg(format!(
                "source '{}'; complete -C '{BIN} {line}'",
                script.display()
            ))
            .current_dir(&dir.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(complete("map d"), ["delete", "dump"]);
    assert_eq!(complete("exec b"), ["bpf"]);
    // Where tcbpf has no words (a path comes), fish offers files.
    assert_eq!(complete("map dump pinned so"), ["some.o"]);
}

#[test]
fn zsh_completion_function_offers_the_parsers_words() {
    if !have("zsh") {
        eprintln!("SKIP zsh_completion_function_offers_the_parsers_words: no zsh");
        return;
    }
    let dir = TempDir::new("gen-zsh");
    let script = dir.0.join("_tcbpf");
    std::fs::write(&script, tcbpf(&["gen", "completions", "zsh"])).unwrap();
    // The script's own function, run by zsh with the completion system's
    // two builtins it calls (compadd, _files) standing in as printers.
    let complete = |typed: &str, current: usize| -> Vec<String> {
        let out = Command::new("zsh")
            .arg("-f")
            .arg("-c")
            .arg(format!(
                "compadd() {{ [[ $1 == -a ]] && print -l ${{(P)2}}; }}; _files() {{ print FILES; }}; \
                 words=({BIN} {typed} ''); CURRENT={current}; source '{}'",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    };
    let after_map = complete("map", 3);
    assert!(
        after_map.contains(&"dump".to_string()) && after_map.contains(&"delete".to_string()),
        "{after_map:?}"
    );
    assert_eq!(complete("map dump pinned", 5), ["FILES"]);
}
