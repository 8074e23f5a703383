//! Mutation fuzzing on the stable toolchain: a seeded generator mutates
//! valid inputs (real module objects, real module tables) byte by byte, by
//! splices, truncations and interesting values, and feeds each to the code
//! under test inside `catch_unwind`. Any panic is a crash: the input is
//! written to `tests/fuzz/crashes/<target>-<hash>.bin` and the run fails.
//! Errors are expected; panics, hangs and out-of-bounds reads are not.
//!
//! There is no coverage feedback (libFuzzer needs a nightly compiler, which
//! this project does not use), so these find what random damage to valid
//! inputs finds; every crash found is kept as a regression input that
//! `regressions()` replays first.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A small, fast, seeded generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

const INTERESTING: [u64; 10] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    u64::MAX,
    u64::MAX / 2,
];

/// One mutation of `input`: flips, interesting values at random offsets
/// and widths, truncations, or a splice of another part of the input.
pub fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    if v.is_empty() {
        return v;
    }
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len());
        match rng.below(6) {
            0 => v[at] ^= 1 << rng.below(8),
            1 => v[at] = rng.next_u64() as u8,
            2 => {
                let w = [1usize, 2, 4, 8][rng.below(4)];
                let val = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let end = (at + w).min(v.len());
                v[at..end].copy_from_slice(&val[..end - at]);
            }
            3 => v.truncate(at.max(1)),
            4 => {
                let from = rng.below(v.len());
                let len = rng.below(64).min(v.len() - from).min(v.len() - at);
                let chunk = v[from..from + len].to_vec();
                v[at..at + len].copy_from_slice(&chunk);
            }
            _ => {
                let n = rng.below(16);
                v.splice(at..at, (0..n).map(|_| rng.next_u64() as u8));
            }
        }
        if v.is_empty() {
            break;
        }
    }
    v
}

/// Where crashing inputs of `target` are kept.
pub fn crash_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes")
}

/// The kept crashing inputs of `target` (regression inputs).
pub fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(dir) = std::fs::read_dir(crash_dir()) else {
        return Vec::new();
    };
    let mut v: Vec<(PathBuf, Vec<u8>)> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{target}-")))
        })
        .filter_map(|p| std::fs::read(&p).ok().map(|d| (p, d)))
        .collect();
    v.sort();
    v
}

/// Runs `check` on the regression inputs, then on mutations of `seeds`
/// for `time`; returns the number of inputs tried, or the path of the first
/// crashing input (written to [`crash_dir`]).
pub fn run(
    target: &str,
    seeds: &[Vec<u8>],
    time: Duration,
    seed: u64,
    check: &dyn Fn(&[u8]),
) -> Result<u64, PathBuf> {
    // Panics are reported by this harness, not printed by the hook.
    std::panic::set_hook(Box::new(|_| {}));
    let crashed = |input: &[u8]| catch_unwind(AssertUnwindSafe(|| check(input))).is_err();
    for (path, input) in regressions(target) {
        if crashed(&input) {
            return Err(path);
        }
    }
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < time {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base);
        n += 1;
        if crashed(&input) {
            let _ = std::fs::create_dir_all(crash_dir());
            let h = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            });
            let path = crash_dir().join(format!("{target}-{h:016x}.bin"));
            let _ = std::fs::write(&path, &input);
            return Err(path);
        }
    }
    Ok(n)
}

/// The fuzzing time from `FUZZ_SECONDS` (default `default_secs`).
pub fn time(default_secs: u64) -> Duration {
    Duration::from_secs(
        std::env::var("FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default_secs),
    )
}

/// The seed from `FUZZ_SEED` (default: the time, printed so a run can be
/// repeated).
pub fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_change_inputs_and_crashes_are_caught() {
        let mut rng = Rng::new(7);
        let input = vec![0u8; 100];
        assert!((0..20).any(|_| mutate(&mut rng, &input) != input));
        // A check that panics on one byte value is found and kept.
        let dir = crash_dir();
        let r = run(
            "selftest",
            &[vec![0u8; 8]],
            Duration::from_secs(5),
            3,
            &|d| {
                assert!(!d.contains(&0xff), "found");
            },
        );
        let path = r.expect_err("the planted crash is found");
        assert!(path.starts_with(&dir));
        std::fs::remove_file(path).unwrap();
    }
}
