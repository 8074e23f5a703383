//! `plk-qemu`: boots an image under QEMU with the command line the boot
//! tests use ([`boot_tests::QemuConfig`], the one place it is built), for
//! `make run`, `make gdb` and `make expect`.
//!
//! It runs QEMU on the terminal and turns its exit status into the
//! kernel's verdict (33 success, 37 booted degraded, 35 failure, 0 a triple
//! fault or reset), exiting 0 only for success, 3 for degraded and 1
//! otherwise; with `--print` it prints the command line, shell-quoted,
//! instead. Its own messages go to stderr, so that stdout is the guest's
//! console alone.

use boot_tests::{EXIT_DEGRADED, EXIT_FAILURE, EXIT_SUCCESS, QemuConfig, Serial};
use clap::Parser;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Boots an image under QEMU with the boot tests' command line.
#[derive(Parser, Debug)]
#[command(name = "plk-qemu")]
struct Args {
    /// Kernel image (`-kernel`).
    #[arg(long)]
    image: PathBuf,
    /// Machine preset (`tests/presets/<name>.args`).
    #[arg(long, default_value = "pc")]
    preset: String,
    /// Machine type (`-machine`; the preset's type wins). Options not
    /// given keep `QemuConfig`'s defaults.
    #[arg(long)]
    machine: Option<String>,
    /// Accelerator: `tcg` or `kvm`.
    #[arg(long)]
    accel: Option<String>,
    /// Guest memory (`-m`).
    #[arg(long)]
    memory: Option<String>,
    /// CPUs (`-smp`).
    #[arg(long)]
    smp: Option<u32>,
    /// Kernel command line (`-append`).
    #[arg(long, default_value = "")]
    cmdline: String,
    /// Initrd (`-initrd`).
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// Where COM1 goes: `console` (the terminal, with QEMU's monitor on
    /// Ctrl-A C), `stdio` (stdout, no monitor) or `file:PATH`.
    #[arg(long, default_value = "console")]
    serial: String,
    /// QEMU binary.
    #[arg(long)]
    qemu: Option<String>,
    /// Print the command line (shell-quoted) instead of running it.
    #[arg(long)]
    print: bool,
    /// The boot is for a debugger: probes get a budget of minutes, unless
    /// `--cmdline` sets `probe_budget_ms` (a probe held at a breakpoint
    /// would otherwise be cut off as hung).
    #[arg(long)]
    debugger: bool,
    /// More QEMU arguments, after the preset's.
    #[arg(last = true)]
    extra: Vec<String>,
}

/// `s` quoted for a POSIX shell (left bare when that is safe).
fn quoted(s: &str) -> String {
    let bare = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./,:=+@%".contains(&b));
    if bare {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn main() -> ExitCode {
    let a = Args::parse();
    let serial = match a.serial.as_str() {
        "console" => Serial::Console,
        "stdio" => Serial::Stdio,
        other => match other.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Serial::File(p.into()),
            _ => {
                eprintln!("plk-qemu: --serial {other}: expected console, stdio or file:PATH");
                return ExitCode::from(2);
            }
        },
    };
    let mut cfg = QemuConfig::default()
        .image(&a.image)
        .cmdline(&a.cmdline)
        .serial(serial)
        .preset(&a.preset)
        .args(a.extra.iter().cloned());
    if let Some(q) = &a.qemu {
        cfg = cfg.qemu(q);
    }
    if let Some(m) = &a.machine {
        cfg = cfg.machine(m);
    }
    if let Some(x) = &a.accel {
        cfg = cfg.accel(x);
    }
    if let Some(m) = &a.memory {
        cfg = cfg.memory(m);
    }
    if let Some(n) = a.smp {
        cfg = cfg.smp(n);
    }
    if let Some(i) = &a.initrd {
        cfg = cfg.initrd(i);
    }
    if a.debugger {
        cfg = cfg.for_debugger();
    }
    let args = cfg.qemu_args();
    let line: Vec<String> = std::iter::once(cfg.qemu.clone())
        .chain(args.iter().cloned())
        .map(|s| quoted(&s))
        .collect();
    if a.print {
        println!("{}", line.join(" "));
        return ExitCode::SUCCESS;
    }
    eprintln!("qemu: preset {}: {}", a.preset, line.join(" "));
    let status = match Command::new(&cfg.qemu).args(&args).status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "plk-qemu: cannot start {}: {e} (`make ensure-qemu`)",
                cfg.qemu
            );
            return ExitCode::FAILURE;
        }
    };
    match status.code() {
        Some(EXIT_SUCCESS) => {
            eprintln!("qemu: kernel reported success (exit status {EXIT_SUCCESS})");
            ExitCode::SUCCESS
        }
        Some(EXIT_DEGRADED) => {
            eprintln!(
                "qemu: WARNING: kernel booted DEGRADED (exit status {EXIT_DEGRADED}): a kept module failed its self-test or faulted later; see the selftest column and the warnings above"
            );
            ExitCode::from(3)
        }
        Some(EXIT_FAILURE) => {
            eprintln!("qemu: kernel reported FAILURE (exit status {EXIT_FAILURE})");
            ExitCode::FAILURE
        }
        Some(0) => {
            eprintln!("qemu: exited with status 0: triple fault or reset, not a pass");
            ExitCode::FAILURE
        }
        Some(c) => {
            eprintln!("qemu: exited with status {c}, not a pass");
            ExitCode::FAILURE
        }
        None => {
            eprintln!("qemu: ended by a signal ({status}), not a pass");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(quoted("-m"), "-m");
        assert_eq!(
            quoted("file:build/disk.img,format=raw"),
            "file:build/disk.img,format=raw"
        );
        assert_eq!(quoted(""), "''");
        assert_eq!(quoted("halt fault=pagefault"), "'halt fault=pagefault'");
        assert_eq!(quoted("it's"), r"'it'\''s'");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf '%s|' {}", quoted("a 'b' $c \"d\""))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a 'b' $c \"d\"|");
    }
}
