//! Mutation test of the parser: seeded random corruptions of every
//! committed object (byte flips, overwritten header and table fields,
//! truncations) must give `Ok` or a clear error, never a panic or a hang.
//! Bounded to a few seconds (TCBPF_MUTATION_SECS for longer runs,
//! TCBPF_MUTATION_SEED for other seeds); a failure prints its seed.

use std::sync::mpsc;
use std::time::{Duration, Instant};
use tcbpf::elf::ObjectSpec;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            2 if data.len() > 16 => {
                // A header or table field: small, huge or random values.
                let i = rng.below(data.len().saturating_sub(8)) & !3;
                let v: u64 = match rng.below(4) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => rng.below(256) as u64,
                    _ => rng.next(),
                };
                let n = if rng.below(2) == 0 { 4 } else { 8 };
                data[i..i + n].copy_from_slice(&v.to_le_bytes()[..n]);
            }
            1 | 2 => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            3 => {
                // The ELF header itself.
                let i = rng.below(64.min(data.len()));
                data[i] = rng.next() as u8;
            }
            _ => {
                let len = rng.below(data.len());
                data.truncate(len.max(1));
            }
        }
    }
}

#[test]
fn random_corruptions_never_panic_or_hang() {
    let dir = tcbpf_testkit::repo().join("bpf");
    let mut objects: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    objects.sort();
    assert!(objects.len() >= 10, "fixtures found: {}", objects.len());

    // TCBPF_MUTATION_SECS / TCBPF_MUTATION_SEED run longer or other seeds.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let secs = env("TCBPF_MUTATION_SECS", 3);
    let first_seed = env("TCBPF_MUTATION_SEED", 1);
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let budget = Duration::from_secs(secs);
        let start = Instant::now();
        let mut runs = 0u64;
        let mut errors = 0u64;
        'outer: for seed in first_seed.. {
            for (name, clean) in &objects {
                if start.elapsed() > budget {
                    break 'outer;
                }
                let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ name.len() as u64);
                let mut data = clean.clone();
                mutate(&mut rng, &mut data);
                let result = std::panic::catch_unwind(|| ObjectSpec::parse(name, &data));
                match result {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        errors += 1;
                        let msg = e.to_string();
                        assert!(
                            msg.starts_with(name.as_str()),
                            "error without the file name: {msg}"
                        );
                        assert!(!msg.contains('\n'), "multi-line error: {msg}");
                    }
                    Err(_) => panic!("parser panicked on {name} with seed {seed}"),
                }
                runs += 1;
            }
        }
        tx.send((runs, errors)).unwrap();
    });
    let (runs, errors) = match rx.recv_timeout(Duration::from_secs(60 + 2 * secs)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the parser hung on a corrupted object"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let why = worker
                .join()
                .err()
                .and_then(|e| e.downcast_ref::<String>().cloned());
            panic!("{}", why.unwrap_or_else(|| "mutation worker failed".into()));
        }
    };
    worker.join().unwrap();
    assert!(runs > 100, "only {runs} mutations ran");
    assert!(errors > 0, "no corruption was detected in {runs} runs");
    eprintln!("{runs} corrupted objects parsed, {errors} refused");
}
