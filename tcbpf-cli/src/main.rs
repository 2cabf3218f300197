//! The `tcbpf` command: tc's eBPF front-end and exec proxy, in tc's words.

mod cli;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match cli::run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tcbpf: {e}");
            e.exit as i32
        }
    };
    std::process::exit(code);
}
