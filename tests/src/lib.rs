//! A reusable QEMU runner for boot tests.
//!
//! [`run_qemu`] boots the image (`build/image.elf` in the workspace, or the
//! file named by the `PLK_IMAGE` environment variable) with the same device
//! setup as `make run`: `-no-reboot`, no display, COM1 on stdout,
//! `isa-debug-exit` on port 0xf4, 256 MiB and 2 CPUs by default, TCG by
//! default (`PLK_ACCEL=kvm` to change). It captures the serial output and
//! kills QEMU after a wall-clock timeout.
//!
//! The kernel exits QEMU with status 33 for success, 37 for "booted,
//! degraded" (a kept module failed its self-test or faulted after its
//! probe) and 35 for failure; [`BootOutcome::passed`] is true only for 33
//! (a triple fault exits 0), [`BootOutcome::degraded`] only for 37.
//!
//! [`QemuConfig::initrd`] adds an initrd (`-initrd`); [`Console`] boots
//! with COM1's input on a pipe, so a test can type at the kernel's shell
//! ([`Console::command`] waits for the [`SHELL_PROMPT`] after each line).
//!
//! ```no_run
//! use boot_tests::{QemuConfig, run_qemu};
//! let out = run_qemu(&QemuConfig::default().cmdline("loglevel=debug"));
//! out.assert_passed();
//! assert!(out.serial.contains("selftest: all passed"));
//! ```

pub mod report;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// QEMU's exit statuses for a kernel that called `exit::success()`,
/// `exit::failure()` and `exit::degraded()` (it booted, but a kept module
/// failed its self-test or faulted later): `report::verdict`'s.
pub use ::report::verdict::{EXIT_DEGRADED, EXIT_FAILURE, EXIT_SUCCESS};

/// The workspace root: the nearest directory with a `tests/presets`
/// directory, from `CARGO_MANIFEST_DIR` as cargo sets it for the test
/// process (this crate's directory), or else from the current directory
/// (where cargo runs tests, or where a tool such as the bench is started).
/// Never the path the tests were compiled in, so a copied tree boots its own
/// images.
pub fn workspace_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .expect("neither CARGO_MANIFEST_DIR nor a current directory");
    start
        .ancestors()
        .find(|d| d.join("tests").join("presets").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "{} is not inside the workspace (no tests/presets above it)",
                start.display()
            )
        })
        .to_path_buf()
}

/// The image of machine preset `name`, prelinked with that preset's
/// expectation (`make preset-images`): `<root>/build/presets/<name>.elf`.
pub fn preset_image(name: &str) -> PathBuf {
    workspace_root()
        .join("build")
        .join("presets")
        .join(format!("{name}.elf"))
}

/// The prelinker's plan of [`preset_image`]`(name)`.
pub fn preset_plan(name: &str) -> PathBuf {
    preset_image(name).with_extension("plan.json")
}

/// The image to boot: `$PLK_IMAGE`, or `<root>/build/image.elf`.
pub fn default_image() -> PathBuf {
    match std::env::var_os("PLK_IMAGE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join("build").join("image.elf"),
    }
}

/// The probe budget of a boot under a debugger ([`QemuConfig::for_debugger`]):
/// ten minutes.
pub const DEBUGGER_PROBE_BUDGET_MS: u64 = 600_000;

/// How to start QEMU.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// Kernel image given to `-kernel`.
    pub image: PathBuf,
    /// Kernel command line (`-append`).
    pub cmdline: String,
    /// Guest memory (`-m`).
    pub memory: String,
    /// Number of CPUs (`-smp`).
    pub smp: u32,
    /// Machine type (`-machine`).
    pub machine: String,
    /// Accelerator: `tcg` or `kvm`.
    pub accel: String,
    /// Extra QEMU arguments (devices, ...).
    pub extra_args: Vec<String>,
    /// Initrd given to `-initrd`, if any.
    pub initrd: Option<PathBuf>,
    /// Kill QEMU after this long.
    pub timeout: Duration,
    /// QEMU binary.
    pub qemu: String,
    /// Where COM1 goes.
    pub serial: Serial,
}

/// Where the guest's COM1 goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Serial {
    /// QEMU's stdout, without a monitor (what the tests read from a pipe):
    /// `-serial stdio -monitor none`.
    #[default]
    Stdio,
    /// The terminal, with QEMU's monitor multiplexed (Ctrl-A X quits,
    /// Ctrl-A C toggles the monitor), as `make run` boots: `-serial
    /// mon:stdio`, given explicitly rather than by `-nographic` so that it
    /// survives `-nodefaults` (preset `minimal`).
    Console,
    /// A file (`make gdb`'s console): `-serial file:PATH -monitor none`.
    File(PathBuf),
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            image: default_image(),
            cmdline: String::new(),
            memory: "256M".into(),
            smp: 2,
            machine: "pc".into(),
            accel: std::env::var("PLK_ACCEL").unwrap_or_else(|_| "tcg".into()),
            extra_args: Vec::new(),
            initrd: None,
            timeout: Duration::from_secs(60),
            qemu: std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into()),
            serial: Serial::Stdio,
        }
    }
}

impl QemuConfig {
    /// Preset `name`'s image, prelinked with its own expectation, on that
    /// preset's machine.
    pub fn for_preset(name: &str) -> Self {
        QemuConfig::default().image(preset_image(name)).preset(name)
    }

    /// Sets the image to boot.
    pub fn image(mut self, image: impl Into<PathBuf>) -> Self {
        self.image = image.into();
        self
    }

    /// Sets the kernel command line.
    pub fn cmdline(mut self, cmdline: &str) -> Self {
        self.cmdline = cmdline.into();
        self
    }

    /// For a boot under a debugger: unless the command line sets
    /// `probe_budget_ms` itself, probes get [`DEBUGGER_PROBE_BUDGET_MS`].
    /// The TSC runs on while the debugger holds the machine at a
    /// breakpoint, so with the default 100 ms a probe stopped at one is
    /// cut off as hung when it goes on.
    pub fn for_debugger(mut self) -> Self {
        if !self
            .cmdline
            .split_whitespace()
            .any(|w| w.starts_with("probe_budget_ms="))
        {
            let budget = format!("probe_budget_ms={DEBUGGER_PROBE_BUDGET_MS}");
            self.cmdline = format!("{} {budget}", self.cmdline).trim().to_string();
        }
        self
    }

    /// Sets the guest memory size (`-m`).
    pub fn memory(mut self, memory: &str) -> Self {
        self.memory = memory.into();
        self
    }

    /// Sets the number of CPUs (`-smp`).
    pub fn smp(mut self, cpus: u32) -> Self {
        self.smp = cpus;
        self
    }

    /// Adds QEMU arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds the QEMU arguments of machine preset `name`
    /// (`tests/presets/<name>.args`, the file `make run PRESET=<name>`
    /// reads), with `{build}` replaced by the image's directory. Creates the
    /// preset's raw disk image (`{build}/disk.img`, 8 MiB) if it is missing.
    pub fn preset(self, name: &str) -> Self {
        let args = preset_args_in(&workspace_root(), name)
            .unwrap_or_else(|e| panic!("{e}; presets: {:?}", presets()));
        self.args(args)
    }

    /// Boots with `initrd` as the initrd (`-initrd`: the kernel's first PVH
    /// boot module).
    pub fn initrd(mut self, initrd: impl Into<PathBuf>) -> Self {
        self.initrd = Some(initrd.into());
        self
    }

    /// Sets where COM1 goes.
    pub fn serial(mut self, serial: Serial) -> Self {
        self.serial = serial;
        self
    }

    /// Sets the machine type (`-machine`; a preset's `-machine` options
    /// merge with it, the preset's type winning).
    pub fn machine(mut self, machine: &str) -> Self {
        self.machine = machine.into();
        self
    }

    /// Sets the accelerator (`tcg` or `kvm`).
    pub fn accel(mut self, accel: &str) -> Self {
        self.accel = accel.into();
        self
    }

    /// Sets the QEMU binary.
    pub fn qemu(mut self, qemu: &str) -> Self {
        self.qemu = qemu.into();
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The full QEMU argument list.
    pub fn qemu_args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "-machine",
            &format!("{},accel={}", self.machine, self.accel),
            "-m",
            &self.memory,
            "-smp",
            &self.smp.to_string(),
            "-display",
            "none",
            "-no-reboot",
            "-device",
            &::report::verdict::qemu_device(),
            "-kernel",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(self.image.display().to_string());
        a.extend(match &self.serial {
            Serial::Stdio => vec![
                "-serial".into(),
                "stdio".into(),
                "-monitor".into(),
                "none".into(),
            ],
            Serial::Console => vec!["-serial".into(), "mon:stdio".into()],
            Serial::File(p) => vec![
                "-serial".into(),
                format!("file:{}", p.display()),
                "-monitor".into(),
                "none".into(),
            ],
        });
        a.push("-append".into());
        a.push(self.cmdline.clone());
        if let Some(i) = &self.initrd {
            a.push("-initrd".into());
            a.push(i.display().to_string());
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// The machine presets: the names of `tests/presets/*.args`, sorted.
pub fn presets() -> Vec<String> {
    presets_in(&workspace_root()).unwrap_or_else(|e| panic!("{e}"))
}

/// The machine presets of the tree at `root` (its `tests/presets/*.args`),
/// sorted.
pub fn presets_in(root: &Path) -> Result<Vec<String>, String> {
    let dir = root.join("tests").join("presets");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "args").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    v.sort();
    Ok(v)
}

/// The QEMU arguments of machine preset `name`, from
/// `tests/presets/<name>.args`: one argument per line, blank lines and
/// `#` comment lines skipped, `{build}` replaced by `build`.
/// `make run PRESET=<name>` boots with the same (through `plk-qemu`).
pub fn preset_args(name: &str, build: &Path) -> Vec<String> {
    let text = preset_text(&workspace_root(), name)
        .unwrap_or_else(|e| panic!("{e}; presets: {:?}", presets()));
    parse_preset(&text, build)
}

/// The text of `root/tests/presets/<name>.args`.
fn preset_text(root: &Path, name: &str) -> Result<String, String> {
    let path = root
        .join("tests")
        .join("presets")
        .join(format!("{name}.args"));
    std::fs::read_to_string(&path)
        .map_err(|e| format!("unknown preset {name} ({}: {e})", path.display()))
}

/// The QEMU arguments of preset `name` of the tree at `root` (its
/// `tests/presets/<name>.args`, `{build}` being `root/build`). Creates the
/// preset's raw disk image (`build/disk.img`, [`DISK_IMAGE_BYTES`],
/// sparse) if the arguments name it and it is missing.
pub fn preset_args_in(root: &Path, name: &str) -> Result<Vec<String>, String> {
    let text = preset_text(root, name)?;
    let build = root.join("build");
    let args = parse_preset(&text, &build);
    let disk = build.join("disk.img");
    if args.iter().any(|a| a.contains(&*disk.to_string_lossy())) && !disk.exists() {
        std::fs::create_dir_all(&build)
            .and_then(|()| std::fs::File::create(&disk))
            .and_then(|f| f.set_len(DISK_IMAGE_BYTES))
            .map_err(|e| format!("creating {}: {e}", disk.display()))?;
    }
    Ok(args)
}

/// Size of the raw disk image that presets with a disk boot with.
pub const DISK_IMAGE_BYTES: u64 = 8 << 20;

fn parse_preset(text: &str, build: &Path) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.replace("{build}", &build.display().to_string()))
        .collect()
}

/// What happened when QEMU ran.
#[derive(Clone, Debug)]
pub struct BootOutcome {
    /// QEMU's exit status; `None` if it was killed (timeout) or by a signal.
    pub exit_status: Option<i32>,
    /// Everything written to COM1 (firmware output included).
    pub serial: String,
    /// True if the timeout expired and QEMU was killed.
    pub timed_out: bool,
    /// Wall-clock run time.
    pub elapsed: Duration,
}

impl BootOutcome {
    /// True only if the kernel reported success (QEMU status 33).
    pub fn passed(&self) -> bool {
        self.exit_status == Some(EXIT_SUCCESS)
    }

    /// True if the kernel reported failure (QEMU status 35).
    pub fn failed(&self) -> bool {
        self.exit_status == Some(EXIT_FAILURE)
    }

    /// True if the kernel booted degraded (QEMU status 37).
    pub fn degraded(&self) -> bool {
        self.exit_status == Some(EXIT_DEGRADED)
    }

    /// The serial output from the kernel banner on (firmware output dropped).
    pub fn kernel_output(&self) -> &str {
        match self.serial.find("plk ") {
            Some(i) => &self.serial[i..],
            None => &self.serial,
        }
    }

    /// The first line containing `needle`, if any.
    pub fn line_with(&self, needle: &str) -> Option<&str> {
        self.serial.lines().find(|l| l.contains(needle))
    }

    /// A short description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit status {:?}, timed out {}, {:.2}s; serial output:\n{}",
            self.exit_status,
            self.timed_out,
            self.elapsed.as_secs_f64(),
            self.kernel_output()
        )
    }

    /// Panics with the serial output unless the kernel reported success.
    pub fn assert_passed(&self) {
        assert!(
            self.passed(),
            "kernel did not report success: {}",
            self.describe()
        );
    }

    /// Panics with the serial output unless the kernel booted degraded.
    pub fn assert_degraded(&self) {
        assert!(
            self.degraded(),
            "kernel did not report a degraded boot: {}",
            self.describe()
        );
    }

    /// Panics with the serial output unless the kernel reported failure.
    pub fn assert_failed(&self) {
        assert!(
            self.failed(),
            "kernel did not report failure: {}",
            self.describe()
        );
    }
}

/// One guest at a time per test binary: TCG guests that share the host's
/// cores get their timer interrupts late, which would make probe time
/// budgets and timing checks depend on how many tests run at once.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bytes a reader thread appends to.
type Shared = Arc<Mutex<Vec<u8>>>;

/// A started QEMU whose stdout and stderr are read by threads into shared
/// buffers.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Shared,
    err: Shared,
    readers: Vec<thread::JoinHandle<()>>,
    start: Instant,
}

fn spawn(cfg: &QemuConfig, stdin: Stdio) -> Running {
    assert!(
        cfg.image.is_file(),
        "kernel image {} not found: run `make image` first (or set PLK_IMAGE)",
        cfg.image.display()
    );
    if let Some(i) = &cfg.initrd {
        assert!(i.is_file(), "initrd {} not found", i.display());
    }
    let start = Instant::now();
    let mut child = Command::new(&cfg.qemu)
        .args(cfg.qemu_args())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (install it with `make ensure-qemu`)",
                cfg.qemu
            )
        });
    let out: Shared = Arc::default();
    let err: Shared = Arc::default();
    let mut readers = Vec::new();
    for (mut pipe, buf) in [
        (
            Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn Read + Send>,
            Arc::clone(&out),
        ),
        (
            Box::new(child.stderr.take().expect("piped stderr")),
            Arc::clone(&err),
        ),
    ] {
        readers.push(thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
                }
            }
        }));
    }
    Running {
        stdin: child.stdin.take(),
        child,
        out,
        err,
        readers,
        start,
    }
}

impl Running {
    /// Waits for QEMU to exit until `deadline`, killing it then.
    fn wait(mut self, deadline: Instant) -> BootOutcome {
        drop(self.stdin.take());
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait().expect("waiting for qemu") {
                Some(status) => break status,
                None if Instant::now() >= deadline => {
                    timed_out = true;
                    let _ = self.child.kill();
                    break self.child.wait().expect("waiting for killed qemu");
                }
                None => thread::sleep(Duration::from_millis(20)),
            }
        };
        let elapsed = self.start.elapsed();
        for r in self.readers {
            let _ = r.join();
        }
        let out = self.out.lock().unwrap();
        let err = self.err.lock().unwrap();
        let mut serial = String::from_utf8_lossy(&out).replace("\r\n", "\n");
        if !err.is_empty() {
            serial.push_str("\n[qemu stderr]\n");
            serial.push_str(&String::from_utf8_lossy(&err));
        }
        BootOutcome {
            exit_status: if timed_out { None } else { status.code() },
            serial,
            timed_out,
            elapsed,
        }
    }
}

/// Boots `cfg.image` under QEMU and waits for it to exit or time out.
///
/// Panics if the image does not exist ("run `make image` first") or QEMU
/// cannot be started.
pub fn run_qemu(cfg: &QemuConfig) -> BootOutcome {
    let _turn = one_at_a_time();
    let r = spawn(cfg, Stdio::null());
    let deadline = r.start + cfg.timeout;
    r.wait(deadline)
}

/// The prompt of the kernel's shell (`kernel/src/shell.rs`).
pub const SHELL_PROMPT: &str = "plk> ";

/// A QEMU boot whose COM1 input the test writes (QEMU's stdin), for
/// driving the kernel's shell. Output is read as it comes; every wait is
/// bounded by the configuration's timeout, counted from the start.
pub struct Console {
    run: Option<Running>,
    deadline: Instant,
    /// Bytes of output already handed out by [`Console::wait_for`].
    seen: usize,
    _turn: MutexGuard<'static, ()>,
}

impl Console {
    /// Boots `cfg` with COM1's input on a pipe.
    pub fn start(cfg: &QemuConfig) -> Console {
        let turn = one_at_a_time();
        let run = spawn(cfg, Stdio::piped());
        Console {
            deadline: run.start + cfg.timeout,
            run: Some(run),
            seen: 0,
            _turn: turn,
        }
    }

    fn running(&mut self) -> &mut Running {
        self.run.as_mut().expect("console closed")
    }

    /// All output so far, with CR LF as LF.
    pub fn output(&mut self) -> String {
        let out = self.running().out.lock().unwrap().clone();
        String::from_utf8_lossy(&out).replace("\r\n", "\n")
    }

    /// Waits until the output not handed out yet contains `needle`; returns
    /// that output up to and including it. Panics, with the output, when
    /// QEMU exits or the deadline passes first.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let out = self.running().out.lock().unwrap().clone();
            let rest = &out[self.seen.min(out.len())..];
            if let Some(i) = rest
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
            {
                let upto = i + needle.len();
                self.seen += upto;
                return String::from_utf8_lossy(&rest[..upto]).replace("\r\n", "\n");
            }
            let exited = self.running().child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= self.deadline {
                let all = self.output();
                panic!(
                    "waiting for {needle:?}: QEMU {}; output:\n{all}",
                    match exited {
                        Some(s) => format!("exited with {s}"),
                        None => "timed out".into(),
                    }
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types `bytes` on COM1.
    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.running().stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("writing to QEMU's stdin");
        stdin.flush().expect("flushing QEMU's stdin");
    }

    /// Waits for the shell's prompt, types `line` and Return, and returns
    /// what the kernel printed up to the next prompt (the echo included).
    pub fn command(&mut self, line: &str) -> String {
        self.wait_for(SHELL_PROMPT);
        self.send(line.as_bytes());
        self.send(b"\n");
        let out = self.wait_for(&format!("\n{SHELL_PROMPT}"));
        // Leave the prompt for the next command to find.
        self.seen -= SHELL_PROMPT.len();
        out[..out.len() - SHELL_PROMPT.len()].to_string()
    }

    /// Closes COM1's input and waits for QEMU to exit (until the deadline).
    pub fn finish(mut self) -> BootOutcome {
        let run = self.run.take().expect("console closed");
        run.wait(self.deadline)
    }
}

impl Drop for Console {
    /// A console dropped before [`Console::finish`] (a test that failed
    /// waiting for output, say) kills its QEMU, which would otherwise run
    /// on after the test: a hung guest for ever.
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            let _ = run.child.kill();
            let _ = run.child.wait();
        }
    }
}

/// Parses the first unsigned integer that follows `prefix` in `text`
/// (decimal, or hex with `0x`).
pub fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let rest = rest.trim_start();
    if let Some(hex) = rest.strip_prefix("0x") {
        let end = hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len());
        u64::from_str_radix(&hex[..end], 16).ok()
    } else {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debugger_boot_gets_a_long_probe_budget_unless_one_is_set() {
        let c = QemuConfig::default().cmdline("shell").for_debugger();
        assert_eq!(c.cmdline, "shell probe_budget_ms=600000");
        let c = QemuConfig::default().for_debugger();
        assert_eq!(c.cmdline, "probe_budget_ms=600000");
        let c = QemuConfig::default()
            .cmdline("probe_budget_ms=5 shell")
            .for_debugger();
        assert_eq!(c.cmdline, "probe_budget_ms=5 shell");
    }

    fn outcome(status: Option<i32>) -> BootOutcome {
        BootOutcome {
            exit_status: status,
            serial: String::new(),
            timed_out: status.is_none(),
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn only_status_33_passes() {
        assert!(outcome(Some(33)).passed());
        for s in [Some(0), Some(1), Some(35), Some(37), None] {
            assert!(!outcome(s).passed(), "{s:?} must not pass");
        }
        assert!(outcome(Some(35)).failed());
        assert!(!outcome(Some(0)).failed());
        assert!(outcome(Some(37)).degraded());
        for s in [Some(33), Some(35), Some(0), None] {
            assert!(!outcome(s).degraded(), "{s:?} is not degraded");
        }
    }

    #[test]
    fn args_carry_the_exit_device_and_cmdline() {
        let cfg = QemuConfig {
            image: "/some/image.elf".into(),
            ..QemuConfig::default()
        }
        .cmdline("halt fault=pagefault")
        .memory("512M")
        .args(["-device", "e1000"]);
        let a = cfg.qemu_args();
        let joined = a.join(" ");
        assert!(joined.contains("-smp 2"), "two CPUs by default: {joined}");
        assert!(cfg.clone().smp(8).qemu_args().join(" ").contains("-smp 8"));
        assert!(joined.contains("-device isa-debug-exit,iobase=0xf4,iosize=0x04"));
        assert!(joined.contains("-no-reboot"));
        assert!(joined.contains("-m 512M"));
        assert!(joined.contains("-kernel /some/image.elf"));
        assert!(joined.ends_with("-device e1000"));
        let i = a.iter().position(|x| x == "-append").unwrap();
        assert_eq!(a[i + 1], "halt fault=pagefault");
    }

    #[test]
    fn serial_modes() {
        let args = |s: Serial| QemuConfig::default().serial(s).qemu_args().join(" ");
        assert!(args(Serial::Stdio).contains("-serial stdio -monitor none"));
        let console = args(Serial::Console);
        assert!(console.contains("-serial mon:stdio") && !console.contains("-monitor"));
        assert!(
            args(Serial::File("/t/s.log".into())).contains("-serial file:/t/s.log -monitor none")
        );
        assert_eq!(
            QemuConfig::default().serial,
            Serial::Stdio,
            "tests read stdout"
        );
    }

    #[test]
    fn initrd_is_passed_before_the_extra_arguments() {
        let cfg = QemuConfig {
            image: "/some/image.elf".into(),
            ..QemuConfig::default()
        }
        .initrd("/b/initrd.img")
        .args(["-device", "e1000"]);
        let joined = cfg.qemu_args().join(" ");
        assert!(
            joined.contains("-append  -initrd /b/initrd.img -device e1000"),
            "{joined}"
        );
        assert!(
            !QemuConfig::default()
                .qemu_args()
                .contains(&"-initrd".to_string())
        );
    }

    #[test]
    #[should_panic(expected = "run `make image` first")]
    fn missing_image_is_reported() {
        let cfg = QemuConfig {
            image: "/nonexistent/image.elf".into(),
            ..QemuConfig::default()
        };
        run_qemu(&cfg);
    }

    #[test]
    fn presets_are_parsed() {
        let text =
            "# comment\n\n-machine\n  q35,kernel-irqchip=split \n-drive\nfile={build}/disk.img\n";
        assert_eq!(
            parse_preset(text, Path::new("/b")),
            [
                "-machine",
                "q35,kernel-irqchip=split",
                "-drive",
                "file=/b/disk.img"
            ]
        );
        assert_eq!(presets(), ["minimal", "pc", "q35-iommu", "virtio"]);
        assert!(preset_args("pc", Path::new("/b")).is_empty());
        let cfg = QemuConfig {
            image: "/some/image.elf".into(),
            ..QemuConfig::default()
        }
        .preset("q35-iommu");
        assert!(cfg.qemu_args().join(" ").ends_with("-device intel-iommu"));
    }

    #[test]
    fn numbers_are_parsed() {
        let t = "memory: 261631 KiB (255.4 MiB) usable\nCR2=0xffffffffdead0000 (not present)";
        assert_eq!(number_after(t, "memory:"), Some(261_631));
        assert_eq!(number_after(t, "CR2="), Some(0xffff_ffff_dead_0000));
        assert_eq!(number_after(t, "absent"), None);
    }
}
