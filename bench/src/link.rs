//! Section 1: the prelinker against rust-lld and mold, and against the I/O
//! floor, on the same module objects (copies of the real ones) and one
//! synthetic kernel, for each module count; and how its time grows with
//! the module count (section 2).

use crate::Ctx;
use crate::floor::Manifest;
use crate::synth::real_module_set;
use crate::util::{self, Res, Timed, median, pinned, ratio};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Relocation entries of `SHT_RELA` sections that apply to allocated
/// sections, and the allocated bytes, of an ELF64 object.
fn elf_counts(data: &[u8]) -> (u64, u64) {
    let u = |at: usize, n: usize| -> u64 {
        data.get(at..at + n)
            .map(|b| b.iter().rev().fold(0u64, |a, &x| a << 8 | x as u64))
            .unwrap_or(0)
    };
    let (shoff, shnum) = (u(0x28, 8) as usize, u(0x3c, 2) as usize);
    let sec = |i: usize| {
        let o = shoff + 64 * i;
        (
            u(o + 4, 4),
            u(o + 8, 8),
            u(o + 0x20, 8),
            u(o + 0x2c, 4),
            u(o + 0x38, 8),
        )
    };
    let (mut relocs, mut alloc) = (0, 0);
    for i in 0..shnum {
        let (typ, flags, size, info, entsize) = sec(i);
        if typ == 4 && (info as usize) < shnum && sec(info as usize).1 & 2 != 0 {
            relocs += size / if entsize == 0 { 24 } else { entsize };
        }
        if flags & 2 != 0 {
            alloc += size;
        }
    }
    (relocs, alloc)
}

/// A linker script putting every module's classes at the region bases.
fn lld_script(bases: [u64; 3]) -> String {
    format!(
        "SECTIONS {{\n  .mtext {:#x} : {{ *(.text .text.*) }}\n  .mrodata {:#x} : {{ *(.rodata .rodata.* .data.rel.ro .data.rel.ro.*) }}\n  .mdata {:#x} : {{ *(.data .data.* .bss .bss.* COMMON) }}\n  /DISCARD/ : {{ *(.modinfo) *(.note .note.*) *(.comment) *(.eh_frame) }}\n}}\n",
        bases[0], bases[1], bases[2]
    )
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn paths(v: &[PathBuf]) -> Vec<String> {
    v.iter().map(|p| p.display().to_string()).collect()
}

/// Runs the section.
pub fn run(ctx: &Ctx) -> Res<Value> {
    let tmp = &ctx.tmp;
    let mib = ctx.region_mib;
    let spec = prelinker::synth::KernelSpec {
        region_size: modtable::PerClass([mib << 20; 3]),
        // 16 bytes per recorded relocation: large module sets need more
        // than the kernel's 256 KiB (as the synth_kernel example sizes it).
        modtable_size: (mib / 2).max(1) << 20,
        ..prelinker::synth::KernelSpec::default()
    };
    let kernel = tmp.join("kernel.elf");
    std::fs::write(&kernel, prelinker::synth::kernel_elf(&spec))
        .map_err(|e| format!("{}: {e}", kernel.display()))?;
    let defsyms: Vec<String> = spec
        .exports
        .iter()
        .map(|(n, a)| format!("--defsym={n}={a:#x}"))
        .collect();
    let kernel_bytes = std::fs::metadata(&kernel).map_err(|e| e.to_string())?.len();
    let mut scales = Vec::new();
    let mut by_n: BTreeMap<usize, f64> = BTreeMap::new();
    for &n in &ctx.scales {
        let mdir = tmp.join(format!("m{n}"));
        let objs = real_module_set(&ctx.root.join("build/modules"), n, &mdir)?;
        let mut in_bytes = 0;
        let (mut relocs, mut alloc) = (0, 0);
        for o in &objs {
            let d = std::fs::read(o).map_err(|e| format!("{}: {e}", o.display()))?;
            let (r, a) = elf_counts(&d);
            relocs += r;
            alloc += a;
            in_bytes += d.len() as u64;
        }
        // The link once in-process, untimed: the region bases for lld and
        // mold, and what the floor must write.
        let k = prelinker::kernel::read_kernel(&kernel).map_err(|e| e.to_string())?;
        let p = prelinker::link_files(&k.name, &k.data, &objs, &prelinker::LinkOptions::default())
            .map_err(|e| e.to_string())?;
        let bases = [0, 1, 2].map(|c| p.plan.regions.0[c].addr);
        let image = tmp.join(format!("image{n}.elf"));
        let floor_out = tmp.join(format!("floor{n}.elf"));
        let manifest = Manifest::of_link(&kernel, &objs, &p, k.data.len() as u64, &floor_out)?;
        let mpath = tmp.join(format!("floor{n}.manifest"));
        manifest.save(&mpath)?;
        let script = tmp.join(format!("m{n}.ld"));
        std::fs::write(&script, lld_script(bases)).map_err(|e| e.to_string())?;
        let lld_out = tmp.join(format!("lld{n}.elf"));
        let mold_out = tmp.join(format!("mold{n}.elf"));

        let mut pre = vec![ctx.prelinker.display().to_string()];
        pre.extend(strs(&["link", "--kernel"]));
        pre.push(kernel.display().to_string());
        pre.push("--output".into());
        pre.push(image.display().to_string());
        pre.extend(paths(&objs));
        let lld = |threads1: bool| {
            let mut v = vec![ctx.lld.display().to_string()];
            v.extend(strs(&[
                "-flavor",
                "gnu",
                "-static",
                "-O0",
                "--no-pie",
                "--build-id=none",
                "-z",
                "norelro",
                "--strip-debug",
                "--allow-multiple-definition",
            ]));
            if threads1 {
                v.push("--threads=1".into());
            }
            v.extend(strs(&["-e", "__module_probe", "-T"]));
            v.push(script.display().to_string());
            v.push("-o".into());
            v.push(lld_out.display().to_string());
            v.extend(defsyms.iter().cloned());
            v.extend(paths(&objs));
            v
        };
        // mold does not take the SECTIONS script: its own .text, .rodata
        // and .data go to the region bases, above an image base below them.
        let mold = |threads1: bool| {
            let mold = ctx.mold.as_ref()?;
            let two = 2u64 << 20;
            let image_base = (bases.iter().min().copied().unwrap_or(0) - two) & !(two - 1);
            let mut v = vec![mold.display().to_string()];
            v.extend(strs(&[
                "-static",
                "--no-pie",
                "--build-id=none",
                "-z",
                "norelro",
                "--strip-debug",
                "--allow-multiple-definition",
                "-e",
                "__module_probe",
            ]));
            v.push(format!("--image-base={image_base:#x}"));
            for (s, b) in ["text", "rodata", "data"].iter().zip(bases) {
                v.push(format!("--section-start=.{s}={b:#x}"));
            }
            if threads1 {
                v.push("--no-threads".into());
            }
            v.push("-o".into());
            v.push(mold_out.display().to_string());
            v.extend(defsyms.iter().cloned());
            v.extend(paths(&objs));
            Some(v)
        };
        let t = |key: &str, argv: Vec<String>, out: &Path| Timed {
            key: key.into(),
            argv,
            output: Some(out.to_path_buf()),
        };
        let mut cmds = vec![
            t("prelinker_1core", pinned(&pre), &image),
            t("lld_1core", pinned(&lld(true)), &lld_out),
            t("prelinker_default", pre.clone(), &image),
            t("lld_default", lld(false), &lld_out),
            t(
                "io_floor",
                vec![
                    ctx.me.display().to_string(),
                    "io-floor".into(),
                    mpath.display().to_string(),
                ],
                &floor_out,
            ),
        ];
        if let (Some(m1), Some(md)) = (mold(true), mold(false)) {
            cmds.push(t("mold_1core", pinned(&m1), &mold_out));
            cmds.push(t("mold_default", md, &mold_out));
        }
        // Links of a few modules take milliseconds: three times the runs.
        let runs = if n < 100 { 3 * ctx.runs } else { ctx.runs };
        let samples = util::interleaved(&cmds, runs)?;
        let med: BTreeMap<&str, f64> = samples
            .iter()
            .map(|(k, v)| (k.as_str(), median(v)))
            .collect();
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut s = json!({
            "modules": n,
            "input_bytes": in_bytes,
            "alloc_bytes": alloc,
            "relocations": relocs,
            "runs": runs,
            "samples_s": samples,
            "median_s": med,
            "image_bytes": size(&image),
            "lld_output_bytes": size(&lld_out),
            "floor": {
                "read_bytes": manifest.read_bytes(),
                "read_ranges": manifest.read_ranges(),
                "files": manifest.reads.len(),
                "written_bytes": manifest.written_bytes(),
                "written_ranges": manifest.write.2.len(),
            },
            "prelinker_vs_lld_1core": ratio(med["prelinker_1core"], med["lld_1core"]),
            "prelinker_vs_lld_default": ratio(med["prelinker_default"], med["lld_default"]),
            "prelinker_vs_io_floor_default": ratio(med["prelinker_default"], med["io_floor"]),
            "prelinker_vs_io_floor_1core": ratio(med["prelinker_1core"], med["io_floor"]),
            "prelinker_relocs_per_s": relocs as f64 / med["prelinker_default"],
            "lld_relocs_per_s": relocs as f64 / med["lld_default"],
            "prelinker_cmd": format!("prelinker link --kernel KERNEL --output IMAGE <{n} objects>"),
            "lld_cmd": format!("rust-lld {} -T SCRIPT -o OUT <{} --defsym> <{n} objects>",
                lld(true)[1..lld(true).iter().position(|a| a == "-T").unwrap_or(1)].join(" "),
                defsyms.len()),
        });
        if let Some(m) = mold(true) {
            s["mold_cmd"] = json!(format!(
                "mold {} -o OUT <{} --defsym> <{n} objects>",
                m[1..m.iter().position(|a| a == "-o").unwrap_or(1)].join(" "),
                defsyms.len()
            ));
            s["prelinker_vs_mold_1core"] = json!(ratio(med["prelinker_1core"], med["mold_1core"]));
            s["prelinker_vs_mold_default"] =
                json!(ratio(med["prelinker_default"], med["mold_default"]));
            s["mold_output_bytes"] = json!(size(&mold_out));
        }
        eprintln!(
            "bench:   {n:4} modules: prelinker {:.1} ms (1 core {:.1}), rust-lld {:.1} ms (1 core {:.1}), I/O floor {:.1} ms",
            med["prelinker_default"] * 1e3,
            med["prelinker_1core"] * 1e3,
            med["lld_default"] * 1e3,
            med["lld_1core"] * 1e3,
            med["io_floor"] * 1e3
        );
        by_n.insert(n, med["prelinker_default"]);
        scales.push(s);
        for f in [&image, &lld_out, &mold_out, &floor_out] {
            let _ = std::fs::remove_file(f);
        }
        let _ = std::fs::remove_dir_all(&mdir);
    }
    // Section 2: the fixed cost (a 1-module link) and the cost per module
    // above it, and the marginal cost between consecutive scales.
    let mut scale = json!({});
    if let Some(&t1) = by_n.get(&1) {
        let above: BTreeMap<String, f64> = by_n
            .iter()
            .filter(|&(&n, _)| n > 1)
            .map(|(&n, &t)| (n.to_string(), (t - t1) / (n - 1) as f64 * 1e6))
            .collect();
        scale["fixed_cost_s"] = json!(t1);
        scale["us_per_module_above_fixed"] = json!(above);
    }
    let ns: Vec<(usize, f64)> = by_n.iter().map(|(&n, &t)| (n, t)).collect();
    let marginal: BTreeMap<String, f64> = ns
        .windows(2)
        .map(|w| {
            (
                format!("{}-{}", w[0].0, w[1].0),
                (w[1].1 - w[0].1) / (w[1].0 - w[0].0) as f64 * 1e6,
            )
        })
        .collect();
    scale["marginal_us_per_module"] = json!(marginal);
    scale["us_per_module"] = json!(
        by_n.iter()
            .map(|(n, t)| (n.to_string(), t / *n as f64 * 1e6))
            .collect::<BTreeMap<_, _>>()
    );
    Ok(json!({
        "region_mib": mib,
        "kernel_bytes": kernel_bytes,
        "outputs_in": if tmp.starts_with("/dev/shm") { "a RAM file system (/dev/shm)" } else { "the system's temporary directory" },
        "scales": scales,
        "scale": scale,
    }))
}
