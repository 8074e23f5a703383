//! Section 4: the native replay of the module phase (the
//! `relocate_replay` example of the prelinker, which runs the kernel's own
//! checksum and relocation code on the host), on the 15-module image linked
//! without an expectation and on the largest scale image, each with the
//! kept set of one of its boots.

use crate::Ctx;
use crate::util::Res;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

fn replay(ctx: &Ctx, image: &Path, kept: &str, name: &str) -> Res<Value> {
    let kf = ctx.tmp.join(format!("{name}.kept"));
    std::fs::write(&kf, kept).map_err(|e| e.to_string())?;
    let out = Command::new(&ctx.replay)
        .arg(image)
        .arg("--kept")
        .arg(&kf)
        .arg("--runs")
        .arg(ctx.replay_runs.to_string())
        .output()
        .map_err(|e| format!("{}: {e} (make bench builds it)", ctx.replay.display()))?;
    if !out.status.success() {
        return Err(format!(
            "relocate_replay {}: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("relocate_replay output: {e}"))?;
    v["image"] = json!(name);
    Ok(v)
}

/// Runs the replays: `noexpect` with the kept set of `noexpect_report`, and
/// the scale image of `scale` (module count, REPORT) if given.
pub fn run(
    ctx: &Ctx,
    noexpect: &Path,
    noexpect_report: &Value,
    scale: Option<&(usize, Value)>,
) -> Res<Value> {
    let mut out = json!({});
    let n_real = noexpect_report["modules"].as_array().map_or(0, |m| m.len());
    out["real"] = replay(
        ctx,
        noexpect,
        &crate::boots::kept_file(noexpect_report),
        &format!("{n_real} real modules, linked without an expectation"),
    )?;
    if let Some((n, r)) = scale {
        let image = ctx.root.join(format!("build/scale/image-{n}.elf"));
        out["scale"] = replay(
            ctx,
            &image,
            &crate::boots::kept_file(r),
            &format!("scale image, {n} modules"),
        )?;
    }
    Ok(out)
}
