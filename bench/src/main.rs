//! The benchmarks of `make bench`: the prelinker against rust-lld, mold and
//! the I/O floor of a link; the module phase of boot under the emulator
//! (QEMU), for the real image and for scale images of up to 1000 modules;
//! the native replay of the module phase; and the memory layout per preset
//! and reclaim policy beside the previous layout's. Writes
//! `bench/results/latest.json` (every sample) and `latest.md` (the summary
//! docs/benchmarks.md quotes). See docs/benchmarks.md.
//!
//! Subcommands used by the Makefile and by the bench itself:
//! `bench scale-modules TEMPLATE.o N DIR`, `bench io-floor MANIFEST`,
//! `bench layout-v1 TREE COMMIT OUT.json`; `bench render` writes
//! `latest.md` (and its copy in docs/benchmarks.md) again from
//! `latest.json`.

mod boots;
mod floor;
mod host_speed;
mod link;
mod md;
mod replay;
mod synth;
mod util;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use util::{Load, Res, with_load};

/// Samples per point below which a run is a short one (figures for
/// development only), and the default of `BENCH_RUNS` and `BENCH_BOOTS`.
pub const MIN_SAMPLES: usize = 11;

/// The sections, in the order they run (`BENCH_SECTIONS` picks some).
const SECTIONS: [&str; 6] = ["link", "boot", "scale", "replay", "layout", "percpu"];

/// Whether the sections `on` picks boot the kernel (all but `link`).
fn any_boots(on: &dyn Fn(&str) -> bool) -> bool {
    SECTIONS[1..].iter().any(|s| on(s))
}

/// Everything the sections need to know.
pub struct Ctx {
    /// Workspace root.
    pub root: PathBuf,
    /// Scratch directory (a RAM file system when there is one).
    pub tmp: PathBuf,
    /// The prelinker binary.
    pub prelinker: PathBuf,
    /// rust-lld of the pinned toolchain.
    pub lld: PathBuf,
    /// mold, if installed.
    pub mold: Option<PathBuf>,
    /// This binary (for `io-floor`).
    pub me: PathBuf,
    /// The relocate_replay example.
    pub replay: PathBuf,
    /// Samples per point of the host-tool comparisons.
    pub runs: usize,
    /// Boots per point.
    pub boots: usize,
    /// Runs of the native replay.
    pub replay_runs: usize,
    /// Module counts of the linker comparison.
    pub scales: Vec<usize>,
    /// Module counts of the scale images booted.
    pub scale_boot: Vec<usize>,
    /// Region size of the synthetic kernel (MiB per class).
    pub region_mib: u64,
    /// QEMU accelerator.
    pub accel: String,
    /// The 1-minute load below which the host-tool comparison starts.
    pub quiet_below: f64,
    /// Seconds to wait at most for it.
    pub quiet_wait_s: f64,
}

/// Removes the scratch directory when the bench ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn machine(ctx: &Ctx, accel_note: &str) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |k: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_once(':'))
            .map(|x| x.1.trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    let flags = field("flags");
    let virt: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| ["vmx", "svm", "hypervisor"].contains(f))
        .collect();
    let qemu = std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
    json!({
        "cpu_model": field("model name"),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "cpu_virt_flags": virt,
        "os_kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "qemu": util::first_line(&qemu, &["--version"], "not found"),
        "rustc": util::first_line("rustc", &["--version"], "unknown"),
        // The version of the rust-lld the link section ran (the toolchain's;
        // its path is the machine's and is not recorded).
        "rust_lld": util::first_line(
            &ctx.lld.display().to_string(),
            &["-flavor", "gnu", "--version"],
            "unknown"
        )
        .split(" (")
        .next()
        .unwrap_or_default(),
        "mold": ctx.mold.as_ref().map_or("not installed".to_string(), |m| util::first_line(&m.display().to_string(), &["--version"], "unknown")),
        "accel": ctx.accel,
        "accel_note": accel_note,
    })
}

/// KVM if `/dev/kvm` opens and a guest boots under it within 15 s, else TCG.
fn pick_accel(root: &Path) -> (String, String) {
    let rw = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !rw {
        return ("tcg".into(), "/dev/kvm missing or not accessible".into());
    }
    let mut cfg = boot_tests::QemuConfig::default()
        .image(root.join("build/image.elf"))
        .timeout(std::time::Duration::from_secs(15));
    cfg.accel = "kvm".into();
    let out = boot_tests::run_qemu(&cfg);
    if out.passed() {
        return ("kvm".into(), "guest booted under KVM".into());
    }
    let err: Vec<&str> = out
        .serial
        .lines()
        .filter(|l| l.contains("KVM") || l.to_lowercase().contains("error"))
        .take(2)
        .collect();
    (
        "tcg".into(),
        format!(
            "/dev/kvm opens but the guest does not boot (status {:?}{})",
            out.exit_status,
            if err.is_empty() {
                String::new()
            } else {
                format!(": {}", err.join("; "))
            }
        ),
    )
}

fn section<T>(name: &str, f: impl FnOnce() -> Res<T>) -> Res<(T, Load)> {
    eprintln!("bench: {name} (load {:?})", util::loadavg());
    with_load(f)
}

fn ctx() -> Res<Ctx> {
    let root = boot_tests::workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let sysroot = util::first_line("rustc", &["--print", "sysroot"], "");
    // The host's rust-lld, where rustup puts it for the host triple.
    let host = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(String::from))
        })
        .ok_or("rustc -vV names no host triple")?;
    let lld = Path::new(&sysroot).join(format!("lib/rustlib/{host}/bin/rust-lld"));
    if !lld.is_file() {
        return Err(format!("rust-lld not found at {}", lld.display()));
    }
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let tmp = base.join(format!("plk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let (accel, _) = ("tcg".to_string(), ());
    Ok(Ctx {
        prelinker: target.join("release/prelinker"),
        // Built by `make bench` without auto-vectorisation, in its own
        // target directory (see the Makefile's REPLAY_RUSTFLAGS).
        replay: target.join("replay/release/examples/relocate_replay"),
        lld,
        mold: util::on_path("mold"),
        me,
        runs: util::env_usize("BENCH_RUNS", MIN_SAMPLES)?,
        boots: util::env_usize("BENCH_BOOTS", MIN_SAMPLES)?,
        replay_runs: util::env_usize("BENCH_REPLAY_RUNS", 21)?,
        scales: util::env_list("BENCH_SCALES", &[1, 10, 100, 1000])?,
        scale_boot: util::env_list("BENCH_SCALE_BOOT", &[15, 100, 1000])?,
        region_mib: util::env_usize("BENCH_REGION_MIB", 16)? as u64,
        quiet_below: util::env_f64("BENCH_QUIET_LOAD", 0.5)?,
        quiet_wait_s: util::env_f64("BENCH_QUIET_WAIT_S", 300.0)?,
        accel,
        root,
        tmp,
    })
}

fn run_all() -> Res<()> {
    let mut ctx = ctx()?;
    let _scratch = Scratch(ctx.tmp.clone());
    let sections: Vec<String> = std::env::var("BENCH_SECTIONS")
        .unwrap_or_else(|_| SECTIONS.join(","))
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    if let Some(bad) = sections.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
        return Err(format!(
            "BENCH_SECTIONS: unknown section `{bad}` (sections: {})",
            SECTIONS.join(",")
        ));
    }
    let on = |s: &str| sections.iter().any(|x| x == s);
    // Everything the chosen sections read is checked before any of them
    // measures anything, so that a missing input costs no wasted run.
    let missing: Vec<String> = inputs(&ctx, &on)
        .into_iter()
        .filter(|(p, _)| !p.exists())
        .map(|(p, how)| format!("{} (run `{how}`)", p.display()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing inputs of the chosen sections (`make bench` builds them all):\n  {}",
            missing.join("\n  ")
        ));
    }
    let (accel, note) = if any_boots(&on) {
        pick_accel(&ctx.root)
    } else {
        ("none".into(), "no chosen section boots the kernel".into())
    };
    ctx.accel = accel;
    let mut data = json!({
        "date_utc": util::first_line("date", &["-u", "+%Y-%m-%d %H:%M"], "unknown"),
        "commit": util::first_line("git", &["-C", &ctx.root.display().to_string(), "rev-parse", "--short", "HEAD"], "unknown"),
        "settings": {
            "runs": ctx.runs, "boots": ctx.boots, "replay_runs": ctx.replay_runs,
            "scales": ctx.scales, "scale_boot": ctx.scale_boot, "region_mib": ctx.region_mib,
            "sections": sections,
        },
    });
    data["machine"] = machine(&ctx, &note);
    eprintln!("bench: accelerator {} ({note})", ctx.accel);
    if ctx.runs < MIN_SAMPLES || ctx.boots < MIN_SAMPLES {
        eprintln!(
            "bench: note: fewer than {MIN_SAMPLES} samples per point (BENCH_RUNS/BENCH_BOOTS): a short run"
        );
    }
    let mut sec = serde_json::Map::new();
    if on("link") {
        // The host tools are timed on a quiet machine: the builds `make
        // bench` runs just before leave the load near 1.
        let quiet = wait_quiet(&ctx, "link");
        let (v, mut load) = section("prelinker vs rust-lld, mold and the I/O floor", || {
            link::run(&ctx)
        })?;
        load.quiet = Some(quiet);
        sec.insert("link".into(), json!({"load": load.json(), "results": v}));
    }
    // The real modules linked without an expectation (modules move), for
    // the boot and replay sections.
    let noexpect = ctx.tmp.join("noexpect.elf");
    if on("boot") || on("replay") {
        link_without_expectation(&ctx, &noexpect)?;
    }
    let mut noexpect_report = Value::Null;
    if on("boot") || on("replay") {
        let (v, load) = section("boots of the real image (emulator)", || {
            boots::real(&ctx, &noexpect)
        })?;
        noexpect_report = v.1;
        sec.insert("boot".into(), json!({"load": load.json(), "results": v.0}));
    }
    let mut largest = None;
    if on("scale") {
        let (v, load) = section("boots of the scale images (emulator)", || {
            boots::scale(&ctx)
        })?;
        largest = v.1;
        sec.insert("scale".into(), json!({"load": load.json(), "results": v.0}));
    }
    if on("replay") {
        // Native timings too: the boots just before leave the load near 1.
        let quiet = wait_quiet(&ctx, "replay");
        let (v, mut load) = section("native replay of the module phase", || {
            replay::run(&ctx, &noexpect, &noexpect_report, largest.as_ref())
        })?;
        load.quiet = Some(quiet);
        sec.insert("replay".into(), json!({"load": load.json(), "results": v}));
    }
    if on("layout") {
        let (v, load) = section("layout per preset and policy (emulator)", || {
            boots::layout(&ctx)
        })?;
        let v1 = std::fs::read_to_string(ctx.root.join("bench/results/layout-v1.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok());
        sec.insert(
            "layout".into(),
            json!({"load": load.json(), "results": v, "v1": v1}),
        );
    }
    if on("percpu") {
        let title = format!(
            "per-CPU data at {} CPUs (emulator)",
            boots::percpu_cpus_text()
        );
        let (v, load) = section(&title, || boots::percpu(&ctx))?;
        sec.insert("percpu".into(), json!({"load": load.json(), "results": v}));
    }
    data["sections"] = Value::Object(sec);
    summary(&mut data);
    let dir = ctx.root.join("bench/results");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut s = serde_json::to_string_pretty(&data).expect("JSON");
    s.push('\n');
    std::fs::write(dir.join("latest.json"), s).map_err(|e| e.to_string())?;
    eprintln!("bench: wrote bench/results/latest.json");
    write_md(&ctx.root, &data)
}

/// What the sections `on` picks read, each with the command that builds it.
fn inputs(ctx: &Ctx, on: &dyn Fn(&str) -> bool) -> Vec<(PathBuf, String)> {
    let build = ctx.root.join("build");
    let mut v = vec![(ctx.prelinker.clone(), "make prelinker".into())];
    if on("link") || on("boot") || on("replay") {
        v.push((build.join("modules"), "make image".into()));
    }
    if on("boot") || on("replay") {
        v.push((build.join("kernel.elf"), "make image".into()));
    }
    if any_boots(on) {
        // Also what the accelerator is chosen by booting.
        v.push((build.join("image.elf"), "make image".into()));
    }
    if on("scale") {
        for &n in &ctx.scale_boot {
            v.push((
                build.join(format!("scale/image-{n}.elf")),
                format!("make scale-image N={n}"),
            ));
        }
    }
    if on("replay") {
        v.push((ctx.replay.clone(), "make bench".into()));
    }
    if on("layout") {
        for p in boot_tests::presets() {
            v.push((boot_tests::preset_image(&p), "make preset-images".into()));
        }
    }
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

/// Links the real modules (`build/modules`) without an expectation into
/// `out`: kept modules then move at boot.
fn link_without_expectation(ctx: &Ctx, out: &Path) -> Res<()> {
    let dir = ctx.root.join("build/modules");
    let mut mods: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e} (run `make image`)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    mods.sort();
    let st = std::process::Command::new(&ctx.prelinker)
        .arg("link")
        .arg("--kernel")
        .arg(ctx.root.join("build/kernel.elf"))
        .arg("--output")
        .arg(out)
        .args(&mods)
        .output()
        .map_err(|e| format!("{}: {e}", ctx.prelinker.display()))?;
    if !st.status.success() {
        return Err(format!(
            "linking without an expectation: {}",
            String::from_utf8_lossy(&st.stderr)
        ));
    }
    Ok(())
}

/// Writes `latest.md` from `data` and copies it into docs/benchmarks.md.
fn write_md(root: &Path, data: &Value) -> Res<()> {
    let latest = md::render(data);
    let dir = root.join("bench/results");
    std::fs::write(dir.join("latest.md"), &latest).map_err(|e| e.to_string())?;
    eprintln!("bench: wrote bench/results/latest.md");
    let doc_path = root.join("docs/benchmarks.md");
    let doc =
        std::fs::read_to_string(&doc_path).map_err(|e| format!("{}: {e}", doc_path.display()))?;
    match md::splice(&doc, &latest) {
        Some(new) => {
            std::fs::write(&doc_path, new).map_err(|e| e.to_string())?;
            eprintln!("bench: copied latest.md into docs/benchmarks.md");
        }
        None => eprintln!(
            "bench: note: docs/benchmarks.md has no {} marker; not updated",
            md::BEGIN
        ),
    }
    Ok(())
}

/// The summary fields other tools read (see docs/benchmarks.md).
fn summary(data: &mut Value) {
    let s = data["sections"].clone();
    let mut lld1 = serde_json::Map::new();
    let mut lldd = serde_json::Map::new();
    let mut floor = serde_json::Map::new();
    for sc in s["link"]["results"]["scales"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let n = sc["modules"].as_u64().unwrap_or(0);
        if n == 100 || n == 1000 {
            lld1.insert(n.to_string(), sc["prelinker_vs_lld_1core"].clone());
            lldd.insert(n.to_string(), sc["prelinker_vs_lld_default"].clone());
        }
        if n == 1000 {
            floor.insert(n.to_string(), sc["prelinker_vs_io_floor_default"].clone());
        }
    }
    data["prelinker_vs_lld_1core"] = Value::Object(lld1);
    data["prelinker_vs_lld_default"] = Value::Object(lldd);
    data["prelinker_vs_io_floor"] = Value::Object(floor);
    let mut bs = serde_json::Map::new();
    if let Some(imgs) = s["scale"]["results"]["images"].as_object() {
        // `ratio_to_15` is the ratio to the 15-module image, so it is given
        // only when the smallest image booted has 15 modules (the default);
        // `ratio_to_smallest` always.
        let smallest = imgs.keys().filter_map(|n| n.parse::<usize>().ok()).min();
        for (n, v) in imgs {
            let ratio = &v["ratio_to_smallest"]["phases_total_ns"];
            bs.insert(
                n.clone(),
                json!({
                    "per_module_ns": v["per_module_ns"],
                    "ratio_to_15": if smallest == Some(15) { ratio.clone() } else { Value::Null },
                    "ratio_to_smallest": ratio,
                }),
            );
        }
    }
    data["boot_scale"] = Value::Object(bs);
    let w = &s["replay"]["results"]["real"]["warm"];
    // In the phase, where the kernel checks a module (after its move);
    // `alone` keeps the checksums over the slots on their own.
    data["checksum_ns_per_kib"] = json!({
        "before": w["phase_serial_checksum_ns_per_kib"],
        "after": w["phase_checksum_ns_per_kib"],
        "alone": {
            "before": w["serial_checksum_ns_per_kib"],
            "after": w["checksum_ns_per_kib"],
        },
    });
}

/// Waits (at most `BENCH_QUIET_WAIT_S`) until the 1-minute load is below
/// `BENCH_QUIET_LOAD`, before the native timings of section `what`; says
/// so when it never is.
fn wait_quiet(ctx: &Ctx, what: &str) -> util::Quiet {
    eprintln!(
        "bench: waiting up to {} s for the 1-minute load to fall below {} (now {:?})",
        ctx.quiet_wait_s,
        ctx.quiet_below,
        util::loadavg()
    );
    let quiet = util::wait_for_quiet(ctx.quiet_below, ctx.quiet_wait_s, 5.0, || {
        util::loadavg()[0]
    });
    if !quiet.reached {
        eprintln!(
            "bench: note: the load did not fall below {} in {} s: the {what} figures are not from a quiet machine",
            ctx.quiet_below, ctx.quiet_wait_s
        );
    }
    quiet
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        None | Some("run") => run_all(),
        Some("io-floor") if args.len() == 2 => floor::run(Path::new(&args[1])),
        Some("render") if args.len() == 1 => {
            let root = boot_tests::workspace_root();
            let p = root.join("bench/results/latest.json");
            std::fs::read_to_string(&p)
                .map_err(|e| format!("{}: {e}", p.display()))
                .and_then(|s| serde_json::from_str::<Value>(&s).map_err(|e| e.to_string()))
                .and_then(|d| write_md(&root, &d))
        }
        Some("scale-modules") if args.len() == 4 => args[2]
            .parse::<usize>()
            .map_err(|_| format!("scale-modules: bad count {}", args[2]))
            .and_then(|n| synth::scale_module_set(Path::new(&args[1]), n, Path::new(&args[3])))
            .map(|v| eprintln!("bench: {} scale modules in {}", v.len(), args[3])),
        Some("layout-v1") if args.len() == 4 => ctx().and_then(|mut c| {
            let _s = Scratch(c.tmp.clone());
            c.accel = pick_accel(&c.root).0;
            boots::layout_v1_file(&c, Path::new(&args[1]), &args[2], Path::new(&args[3]))
        }),
        _ => Err("usage: bench [run] | bench render | bench io-floor MANIFEST | bench scale-modules TEMPLATE.o N DIR | bench layout-v1 TREE COMMIT OUT.json".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_at(root: &str) -> Ctx {
        let root = PathBuf::from(root);
        Ctx {
            tmp: root.join("tmp"),
            prelinker: root.join("target/release/prelinker"),
            lld: root.join("rust-lld"),
            mold: None,
            me: root.join("bench"),
            replay: root.join("target/replay/relocate_replay"),
            runs: MIN_SAMPLES,
            boots: MIN_SAMPLES,
            replay_runs: 21,
            scales: vec![100],
            scale_boot: vec![15, 100],
            region_mib: 16,
            accel: "tcg".into(),
            quiet_below: 0.5,
            quiet_wait_s: 300.0,
            root,
        }
    }

    fn needed(sections: &[&str]) -> Vec<String> {
        let ctx = ctx_at("/r");
        let on = |s: &str| sections.contains(&s);
        inputs(&ctx, &on)
            .into_iter()
            .map(|(p, how)| format!("{} <- {how}", p.display()))
            .collect()
    }

    #[test]
    fn each_section_needs_what_it_reads_and_no_more() {
        assert_eq!(
            needed(&["link"]),
            [
                "/r/target/release/prelinker <- make prelinker",
                "/r/build/modules <- make image"
            ]
        );
        let boot = needed(&["boot"]);
        for p in [
            "/r/build/kernel.elf",
            "/r/build/image.elf",
            "/r/build/modules",
        ] {
            assert!(boot.iter().any(|l| l.starts_with(p)), "{p} in {boot:?}");
        }
        let scale = needed(&["scale"]);
        for n in [15, 100] {
            let want = format!("/r/build/scale/image-{n}.elf <- make scale-image N={n}");
            assert!(scale.contains(&want), "{want} in {scale:?}");
        }
        assert!(!scale.iter().any(|l| l.contains("kernel.elf")));
        let replay = needed(&["replay"]);
        assert!(replay.iter().any(|l| l.contains("relocate_replay")));
        assert!(!replay.iter().any(|l| l.contains("scale/")));
        let layout = needed(&["layout"]);
        assert!(
            layout
                .iter()
                .any(|l| l.contains("build/presets/") && l.ends_with("make preset-images"))
        );
    }
}
