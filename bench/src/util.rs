//! Timing, machine load and small helpers shared by the sections.

use crate::host_speed::{self, HostSpeed};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// An error message for the user.
pub type Res<T> = Result<T, String>;

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
pub fn loadavg() -> [f64; 3] {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = s.split_whitespace().map(|x| x.parse().unwrap_or(f64::NAN));
    [(); 3].map(|_| it.next().unwrap_or(f64::NAN))
}

/// The machine load, and the host's speed, at the start and end of a
/// section.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Load averages when the section started.
    pub start: [f64; 3],
    /// Load averages when it ended.
    pub end: [f64; 3],
    /// The host speed probe when the section started and when it ended.
    pub host_speed: [HostSpeed; 2],
    /// The wait for a quiet machine before the section, if it had one.
    pub quiet: Option<Quiet>,
}

/// How a section waited for the 1-minute load to fall below a limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quiet {
    /// The limit.
    pub below: f64,
    /// Seconds waited.
    pub waited_s: f64,
    /// Whether the load fell below the limit (false: the wait timed out).
    pub reached: bool,
}

impl Load {
    /// `{"start": [..], "end": [..], "host_speed": {"start": {..}, "end":
    /// {..}}}`, with `"quiet": {"below", "waited_s", "reached"}` for a
    /// section that waited for a quiet machine.
    pub fn json(&self) -> Value {
        let mut v = json!({
            "start": self.start,
            "end": self.end,
            "host_speed": {"start": self.host_speed[0].json(), "end": self.host_speed[1].json()},
        });
        if let Some(q) = self.quiet {
            v["quiet"] = json!({"below": q.below, "waited_s": q.waited_s, "reached": q.reached});
        }
        v
    }
}

/// Runs `f`, recording the load and the host's speed before and after.
pub fn with_load<T>(f: impl FnOnce() -> Res<T>) -> Res<(T, Load)> {
    let start = loadavg();
    let speed_start = host_speed::probe();
    let v = f()?;
    let speed_end = host_speed::probe();
    Ok((
        v,
        Load {
            start,
            end: loadavg(),
            host_speed: [speed_start, speed_end],
            quiet: None,
        },
    ))
}

/// Waits, for at most `max_s` seconds, until `load()` (the 1-minute load
/// average) is below `below`, polling every `poll_s` seconds.
pub fn wait_for_quiet(below: f64, max_s: f64, poll_s: f64, mut load: impl FnMut() -> f64) -> Quiet {
    let t = std::time::Instant::now();
    loop {
        let waited_s = t.elapsed().as_secs_f64();
        if load() < below {
            return Quiet {
                below,
                waited_s,
                reached: true,
            };
        }
        if waited_s >= max_s {
            return Quiet {
                below,
                waited_s,
                reached: false,
            };
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(poll_s));
    }
}

/// A positive number from the environment (`default` when unset).
pub fn env_f64(name: &str, default: f64) -> Res<f64> {
    env_positive(name, default, |x: &f64| *x > 0.0 && x.is_finite())
}

/// A number from the environment that `positive` accepts, or `default`.
fn env_positive<T: std::str::FromStr>(
    name: &str,
    default: T,
    positive: impl Fn(&T) -> bool,
) -> Res<T> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(positive)
            .ok_or_else(|| format!("{name}={v}: expected a positive number")),
    }
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// A command line to time, and the file it writes (removed before every
/// run, so that no tool pays for replacing an earlier output).
#[derive(Clone, Debug)]
pub struct Timed {
    /// Short key in the results.
    pub key: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Output file to remove before each run, if any.
    pub output: Option<PathBuf>,
}

fn run_once(t: &Timed) -> Res<f64> {
    if let Some(o) = &t.output {
        let _ = std::fs::remove_file(o);
    }
    let start = Instant::now();
    let out = Command::new(&t.argv[0])
        .args(&t.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{}: cannot start: {e}", t.argv[0]))?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .chars()
            .rev()
            .take(3000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(format!(
            "{} ({}) failed ({}):\n{tail}",
            t.key, t.argv[0], out.status
        ));
    }
    Ok(secs)
}

/// Wall times (s) of `runs` runs of each command after one untimed warm-up
/// run of each. The commands take turns run by run, each round starting
/// one command later, so that a change in the machine's speed during the
/// measurement affects all of them alike instead of biasing their ratios.
pub fn interleaved(cmds: &[Timed], runs: usize) -> Res<BTreeMap<String, Vec<f64>>> {
    for c in cmds {
        run_once(c)?;
    }
    let mut out: BTreeMap<String, Vec<f64>> =
        cmds.iter().map(|c| (c.key.clone(), Vec::new())).collect();
    for r in 0..runs {
        for k in 0..cmds.len() {
            let c = &cmds[(r + k) % cmds.len()];
            let t = run_once(c)?;
            out.get_mut(&c.key).expect("key").push(t);
        }
    }
    Ok(out)
}

/// `argv` run on CPU 0 only (`taskset -c 0`).
pub fn pinned(argv: &[String]) -> Vec<String> {
    let mut v = vec!["taskset".to_string(), "-c".into(), "0".into()];
    v.extend(argv.iter().cloned());
    v
}

/// The first line of `prog --version`-like output, or `what` if it fails.
pub fn first_line(prog: &str, args: &[&str], what: &str) -> String {
    Command::new(prog)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| what.to_string())
}

/// Whether `prog` is on `PATH`.
pub fn on_path(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

/// A positive number from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> Res<usize> {
    env_positive(name, default, |&n| n > 0)
}

/// A comma-separated list of positive numbers from the environment.
pub fn env_list(name: &str, default: &[usize]) -> Res<Vec<usize>> {
    match std::env::var(name) {
        Err(_) => Ok(default.to_vec()),
        Ok(v) => v
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{name}={v}: expected numbers separated by commas"))
            })
            .collect(),
    }
}

/// `a / b`, or NaN when `b` is zero.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

/// Sizes of an ELF file: its length, the bytes the file system allocated
/// for it (holes excluded), and the sum of its `PT_LOAD` memory sizes.
pub fn elf_sizes(path: &Path) -> Res<Value> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let u = |at: usize, n: usize| -> u64 {
        data.get(at..at + n)
            .map(|b| b.iter().rev().fold(0u64, |a, &x| a << 8 | x as u64))
            .unwrap_or(0)
    };
    let (phoff, phentsize, phnum) = (
        u(0x20, 8) as usize,
        u(0x36, 2) as usize,
        u(0x38, 2) as usize,
    );
    let mut memsz = 0;
    for i in 0..phnum {
        let p = phoff + i * phentsize;
        if u(p, 4) == 1 {
            memsz += u(p + 0x28, 8);
        }
    }
    Ok(json!({"file_bytes": m.len(), "allocated_bytes": m.blocks() * 512, "load_bytes": memsz}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_for_a_quiet_machine_ends_when_the_load_falls_or_times_out() {
        let mut loads = [0.9, 0.7, 0.45, 0.2].into_iter();
        let q = wait_for_quiet(0.5, 60.0, 0.0, || loads.next().unwrap());
        assert!(q.reached);
        assert_eq!(
            loads.next(),
            Some(0.2),
            "stopped at the first load below 0.5"
        );
        let q = wait_for_quiet(0.5, 0.05, 0.01, || 1.0);
        assert!(!q.reached && q.waited_s >= 0.05, "{q:?}");
        let probe = |chain_ns| HostSpeed {
            memmove_gib_s: 10.0,
            chain_ns,
        };
        let l = Load {
            start: [0.4; 3],
            end: [0.6; 3],
            host_speed: [probe(1.0), probe(2.0)],
            quiet: Some(q),
        };
        assert_eq!(l.json()["quiet"]["reached"], false);
        assert_eq!(l.json()["host_speed"]["start"]["chain_ns"], 1.0);
        assert_eq!(l.json()["host_speed"]["end"]["chain_ns"], 2.0);
        let measured = with_load(|| Ok(())).unwrap().1.json();
        assert!(measured.get("quiet").is_none());
        for at in ["start", "end"] {
            let s = &measured["host_speed"][at];
            assert!(s["chain_ns"].as_f64().unwrap() > 0.0, "{measured}");
            assert!(s["memmove_gib_s"].as_f64().unwrap() > 0.0, "{measured}");
        }
    }
}
