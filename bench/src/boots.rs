//! The sections that boot the kernel under QEMU: the module phase of the
//! real image (emulator figures), the scale images, and the layout per
//! preset and policy. Every figure comes from the kernel's own `REPORT`.

use crate::Ctx;
use crate::util::{Res, median, ratio};
use boot_tests::{QemuConfig, run_qemu};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The classes, by their report names.
pub const CLASSES: [&str; 3] = report::CLASS_NAMES;
/// The reclaim policies, by their command-line names (`reclaim::policy::Policy`).
pub const POLICIES: [&str; 4] = [
    reclaim::policy::Policy::ALL[0].name(),
    reclaim::policy::Policy::ALL[1].name(),
    reclaim::policy::Policy::ALL[2].name(),
    reclaim::policy::Policy::ALL[3].name(),
];
/// The steps of the module phase the REPORT times (`phases`).
pub const PHASES: [&str; 5] = report::Phases::NAMES;
/// CPU counts the per-CPU section boots at.
pub const PERCPU_CPUS: [u32; 3] = [1, 4, 64];
/// Guest memory of the per-CPU section's boots.
pub const PERCPU_MEMORY: &str = "512M";

/// `1, 4 and 64`: the per-CPU section's CPU counts in words.
pub fn percpu_cpus_text() -> String {
    let n: Vec<String> = PERCPU_CPUS.iter().map(u32::to_string).collect();
    match n.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => n.join(""),
    }
}

/// Boots `image` (with preset `preset`'s QEMU arguments, if any) and
/// returns its REPORT.
pub fn boot(
    ctx: &Ctx,
    image: &Path,
    cmdline: &str,
    preset: Option<&str>,
    timeout_s: u64,
) -> Res<Value> {
    if !image.is_file() {
        return Err(format!(
            "{}: no such image (see docs/benchmarks.md for the make target that builds it)",
            image.display()
        ));
    }
    let mut cfg = QemuConfig::default()
        .image(image)
        .cmdline(cmdline)
        .timeout(Duration::from_secs(timeout_s));
    if let Some(p) = preset {
        cfg = cfg.preset(p);
    }
    cfg = cfg.accel(&ctx.accel);
    let out = run_qemu(&cfg);
    if !out.passed() {
        let d = out.describe();
        let tail: String = d
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(format!(
            "{} ({cmdline}) did not boot: {tail}",
            image.display()
        ));
    }
    out.report()
        .ok_or_else(|| format!("{}: no REPORT line", image.display()))
}

/// The number at `path` in a REPORT, or an error naming the field (a field
/// renamed on the kernel's side fails the bench instead of becoming "n/a").
fn num(r: &Value, path: &[&str]) -> Res<f64> {
    path.iter()
        .fold(r, |v, k| &v[*k])
        .as_f64()
        .ok_or_else(|| format!("REPORT has no number at {}", path.join(".")))
}

/// The figures of the module phase of one boot.
fn phase_figures(r: &Value) -> Res<BTreeMap<String, f64>> {
    let mut m = BTreeMap::new();
    for p in PHASES {
        m.insert(p.to_string(), num(r, &["phases", p])?);
    }
    for k in [
        "modules_ns",
        "boot_ns",
        "boot_to_modules_ns",
        "kept",
        "expunged",
    ] {
        m.insert(k.to_string(), num(r, &[k])?);
    }
    for (name, path) in [
        ("bytes_moved", ["prediction", "bytes_moved"]),
        ("relocs_redone", ["prediction", "relocs_redone"]),
        ("move_relocate_ns_moved", ["cost", "move_relocate_ns"]),
        ("memmove_ns_moved", ["cost", "memmove_ns"]),
    ] {
        m.insert(name.into(), num(r, &path)?);
    }
    Ok(m)
}

fn medians(runs: &[BTreeMap<String, f64>]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Some(first) = runs.first() {
        for k in first.keys() {
            let v: Vec<f64> = runs.iter().map(|r| r[k]).collect();
            out.insert(k.clone(), median(&v));
        }
    }
    out
}

/// The names of the modules a report kept, one a line (the format of
/// `link --expect`), for the native replay.
pub fn kept_file(r: &Value) -> String {
    let mut s = String::from("# kept in a bench boot\n");
    for m in r["modules"].as_array().into_iter().flatten() {
        if m["result"] == "kept" {
            s.push_str(m["name"].as_str().unwrap_or(""));
            s.push('\n');
        }
    }
    s
}

/// Section 3: boots of the real image, prelinked with the pc preset's
/// expectation (nothing moves) and without one (kept modules move), taking
/// turns. Returns the results and one REPORT of the image without
/// expectation (for the replay's kept set).
pub fn real(ctx: &Ctx, noexpect: &Path) -> Res<(Value, Value)> {
    let images = [
        ("expected", ctx.root.join("build/image.elf")),
        ("no_expectation", noexpect.to_path_buf()),
    ];
    let mut runs: BTreeMap<&str, Vec<BTreeMap<String, f64>>> = BTreeMap::new();
    let mut last = Value::Null;
    for r in 0..ctx.boots {
        for k in 0..images.len() {
            let (key, img) = &images[(r + k) % images.len()];
            let rep = boot(ctx, img, "reclaim=compact", None, 120)?;
            runs.entry(key).or_default().push(phase_figures(&rep)?);
            if *key == "no_expectation" {
                last = rep;
            }
        }
    }
    let mut out = json!({"boots": ctx.boots, "policy": "compact", "machine": "pc"});
    for (k, v) in &runs {
        let m = medians(v);
        out[*k] = json!({
            "median": m,
            "modules_share_of_boot": ratio(m["modules_ns"], m["boot_ns"]),
            "move_relocate_over_memmove": ratio(m["move_relocate_ns_moved"], m["memmove_ns_moved"]),
            "runs": v,
        });
    }
    Ok((out, last))
}

/// Whether the accounting of every class range adds up to its size and no
/// page is writable and executable, in one REPORT.
pub fn accounting_ok(r: &Value) -> (bool, Vec<String>) {
    let mut errs = Vec::new();
    for c in CLASSES {
        let a = &r["accounting"][c];
        let sum: u64 = [
            "kernel", "kept", "failed", "padding", "freed", "pool", "heap",
        ]
        .iter()
        .map(|k| a[*k].as_u64().unwrap_or(0))
        .sum();
        let size = a["size"].as_u64().unwrap_or(0);
        if sum != size || size == 0 {
            errs.push(format!("{c}: accounting sums to {sum}, range size {size}"));
        }
    }
    for k in ["wx_pages", "wx_alias_frames"] {
        if r[k].as_u64() != Some(0) {
            errs.push(format!("{k} = {}", r[k]));
        }
    }
    (errs.is_empty(), errs)
}

/// Section 5: the scale images (`make scale-image N=...`), booted in turn;
/// per-module cost of each step of the module phase. Returns the results
/// and the REPORT of the largest image (for the replay's kept set).
pub fn scale(ctx: &Ctx) -> Res<(Value, Option<(usize, Value)>)> {
    let ns = &ctx.scale_boot;
    let image = |n: usize| ctx.root.join(format!("build/scale/image-{n}.elf"));
    let mut runs: BTreeMap<usize, Vec<BTreeMap<String, f64>>> = BTreeMap::new();
    let mut checks: BTreeMap<usize, Value> = BTreeMap::new();
    let mut reasons: BTreeMap<usize, BTreeMap<String, usize>> = BTreeMap::new();
    let mut largest = None;
    for r in 0..ctx.boots {
        for k in 0..ns.len() {
            let n = ns[(r + k) % ns.len()];
            let rep = boot(ctx, &image(n), "reclaim=compact", None, 600)?;
            let mods = rep["modules"].as_array().map_or(0, Vec::len);
            if mods != n {
                return Err(format!(
                    "{}: {mods} modules in the REPORT, expected {n}",
                    image(n).display()
                ));
            }
            let mut f = phase_figures(&rep)?;
            let total: f64 = PHASES.iter().map(|p| f[*p]).sum();
            f.insert("phases_total_ns".into(), total);
            runs.entry(n).or_default().push(f);
            let (ok, errs) = accounting_ok(&rep);
            checks.insert(n, json!({"ok": ok, "errors": errs}));
            if ok {
            } else {
                return Err(format!(
                    "{}: accounting check failed: {errs:?}",
                    image(n).display()
                ));
            }
            let mut by = BTreeMap::new();
            for m in rep["modules"].as_array().into_iter().flatten() {
                if m["result"] != "kept" {
                    let reason = m["reason"].as_str().unwrap_or("?");
                    // The reason without the slot number.
                    let key = reason.split(" at ").next().unwrap_or(reason).to_string();
                    *by.entry(key).or_insert(0) += 1;
                }
            }
            reasons.insert(n, by);
            if Some(n) == ns.iter().max().copied() {
                largest = Some((n, rep));
            }
        }
    }
    let mut per_n = BTreeMap::new();
    let mut per_module: BTreeMap<usize, BTreeMap<String, f64>> = BTreeMap::new();
    for (&n, v) in &runs {
        let m = medians(v);
        let pm: BTreeMap<String, f64> = PHASES
            .iter()
            .map(|p| p.to_string())
            .chain(["phases_total_ns".to_string(), "modules_ns".to_string()])
            .map(|k| (k.clone(), m[&k] / n as f64))
            .collect();
        per_module.insert(n, pm.clone());
        per_n.insert(
            n.to_string(),
            json!({"median": m, "per_module_ns": pm, "checks": checks[&n], "expunged_reasons": reasons[&n], "runs": v}),
        );
    }
    let base = ns.iter().min().copied();
    if let Some(b) = base {
        for (&n, pm) in &per_module {
            let r: BTreeMap<String, f64> = pm
                .iter()
                .map(|(k, v)| (k.clone(), ratio(*v, per_module[&b][k])))
                .collect();
            per_n.get_mut(&n.to_string()).expect("n")["ratio_to_smallest"] = json!(r);
        }
    }
    Ok((
        json!({"boots": ctx.boots, "smallest": base, "images": per_n}),
        largest,
    ))
}

/// The layout figures of one REPORT of layout v2.
fn layout_v2(r: &Value) -> Value {
    json!({
        "kept": r["kept"], "expunged": r["expunged"],
        "freed_bytes": r["freed_bytes"], "pool_bytes": r["pool_bytes"], "heap_bytes": r["heap_bytes"],
        "mappings_after_4k": r["mappings_after"]["4k"], "mappings_after_2m": r["mappings_after"]["2m"],
        "bytes_moved": r["prediction"]["bytes_moved"], "relocs_redone": r["prediction"]["relocs_redone"],
        "accounting": r["accounting"],
    })
}

/// Section 6: every preset's image (`make preset-images`) under every
/// policy, one boot each (the figures do not change between boots).
pub fn layout(ctx: &Ctx) -> Res<Value> {
    let mut out = serde_json::Map::new();
    for p in boot_tests::presets() {
        let image = boot_tests::preset_image(&p);
        let sizes = crate::util::elf_sizes(&image)?;
        let mut pols = serde_json::Map::new();
        for pol in POLICIES {
            let r = boot(ctx, &image, &format!("reclaim={pol}"), Some(&p), 120)?;
            let (ok, errs) = accounting_ok(&r);
            let mut v = layout_v2(&r);
            v["checks"] = json!({"ok": ok, "errors": errs});
            pols.insert(pol.to_string(), v);
        }
        out.insert(p.clone(), json!({"image": sizes, "policies": pols}));
    }
    Ok(Value::Object(out))
}

/// The layout figures of one REPORT of the previous layout (v1): it freed
/// everything it reclaimed to the frame allocator and had no pools or heap
/// tail; bytes moved are the used bytes of every class a kept module moved.
fn layout_v1(r: &Value) -> Value {
    let mut moved = 0;
    let mut relocs = 0;
    for m in r["modules"].as_array().into_iter().flatten() {
        relocs += m["relocs_redone"].as_u64().unwrap_or(0);
        if m["result"] != "kept" {
            continue;
        }
        for c in CLASSES {
            if m["new_addr"][c] != m["old_addr"][c] {
                moved += m["used"][c].as_u64().unwrap_or(0);
            }
        }
    }
    json!({
        "kept": r["kept"], "expunged": r["expunged"],
        "freed_bytes": r["reclaimed_bytes"], "pool_bytes": null, "heap_bytes": null,
        "mappings_after_4k": r["mappings_after"]["4k"], "mappings_after_2m": r["mappings_after"]["2m"],
        "bytes_moved": moved, "relocs_redone": relocs,
    })
}

/// `bench layout-v1 TREE COMMIT OUT`: boots the image of an exported tree
/// of the previous layout (`TREE/build/image.elf`, built by its own `make
/// image`) on every preset of that tree under its policies, and writes the
/// layout figures to OUT.
pub fn layout_v1_file(ctx: &Ctx, tree: &Path, commit: &str, out: &Path) -> Res<()> {
    let image = tree.join("build/image.elf");
    let sizes = crate::util::elf_sizes(&image)?;
    let names = boot_tests::presets_in(tree)?;
    let mut presets = serde_json::Map::new();
    for p in names {
        let args = boot_tests::preset_args_in(tree, &p)?;
        let mut pols = serde_json::Map::new();
        // The policies of layout v1 (compact-split came with v2).
        for pol in ["keep", "holes", "compact"] {
            let cfg = QemuConfig::default()
                .image(&image)
                .cmdline(&format!("reclaim={pol}"))
                .args(args.clone())
                .accel(&ctx.accel)
                .timeout(Duration::from_secs(120));
            let o = run_qemu(&cfg);
            if !o.passed() {
                return Err(format!("v1 {p} {pol}: {}", o.describe()));
            }
            let r = o.report().ok_or("no REPORT")?;
            pols.insert(pol.to_string(), layout_v1(&r));
        }
        presets.insert(p, Value::Object(pols));
    }
    let v = json!({
        "layout": "v1",
        "commit": commit,
        "note": format!("measured at commit {commit} with `make layout-v1` (layout v1: the modules in 2 MiB regions of their own beside the kernel's, in page-aligned slots, one image for every preset; its mapping counts cover the module regions only, v2's the kernel's bytes too; it freed everything it reclaimed, with no pools or heap tail; compact-split did not exist), one boot per preset and policy"),
        "image": sizes,
        "presets": presets,
    });
    let mut s = serde_json::to_string_pretty(&v).expect("JSON");
    s.push('\n');
    std::fs::write(out, s).map_err(|e| format!("{}: {e}", out.display()))
}

/// Per-CPU data for modules, measured: the real image booted with 1, 4 and
/// 64 CPUs (`ctx.boots` boots each, the CPU counts taking turns); per count
/// the REPORT's `percpu` and `percpu_compare` (what this kernel reserved for
/// the kept modules against a fixed 8 KiB per CPU and 32 KiB per CPU minus
/// the kernel's own), and each AP's bring-up time as the kernel logs it
/// (`CPU n (APIC id n) started in X us`; emulator time).
pub fn percpu(ctx: &Ctx) -> Res<Value> {
    let image = ctx.root.join("build/image.elf");
    let mut per: BTreeMap<u32, (Vec<Value>, Vec<f64>)> = BTreeMap::new();
    for _ in 0..ctx.boots {
        for n in PERCPU_CPUS {
            let cfg = QemuConfig::default()
                .image(&image)
                .memory(PERCPU_MEMORY)
                .smp(n)
                .accel(&ctx.accel)
                .timeout(Duration::from_secs(120));
            let out = run_qemu(&cfg);
            if !out.passed() {
                return Err(format!(
                    "{} with {n} CPUs did not boot: {}",
                    image.display(),
                    out.describe()
                ));
            }
            let r = out
                .report()
                .ok_or_else(|| format!("{} with {n} CPUs: no REPORT line", image.display()))?;
            let e = per.entry(n).or_default();
            e.1.extend(out.serial.lines().filter_map(|l| {
                let rest = &l[l.find(") started in ")? + ") started in ".len()..];
                rest.split_whitespace().next()?.parse::<f64>().ok()
            }));
            e.0.push(json!({"percpu": r["percpu"], "percpu_compare": r["percpu_compare"], "cpus": r["cpus"]}));
        }
    }
    let rows: Vec<Value> = per
        .into_iter()
        .map(|(n, (reports, ap_us))| {
            // The byte figures are the same every boot of a count; a boot
            // that disagrees is reported.
            let same = reports.windows(2).all(|w| w[0] == w[1]);
            json!({
                "cpus": n,
                "report": reports[0],
                "boots_agree": same,
                "ap_bringup_us_median": median(&ap_us),
                "ap_bringups": ap_us.len(),
            })
        })
        .collect();
    Ok(json!({ "counts": rows }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_must_add_up_and_wx_be_zero() {
        let class = |extra: u64| {
            json!({"size": 100, "kernel": 10, "kept": 20, "failed": 5, "padding": 5,
                   "freed": 30, "pool": 20 + extra, "heap": 10})
        };
        let mut r = json!({"accounting": {"text": class(0), "rodata": class(0), "data": class(0)},
                           "wx_pages": 0, "wx_alias_frames": 0});
        assert!(accounting_ok(&r).0);
        r["accounting"]["rodata"] = class(1);
        r["wx_pages"] = json!(2);
        let (ok, errs) = accounting_ok(&r);
        assert!(!ok);
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
