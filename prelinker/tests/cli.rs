//! The command line: one test per error (message names what it should, and
//! no output file exists afterwards), plus `link`, `extract` and `inspect`
//! on success.

mod common;

use common::*;
use object::SectionKind;
use prelinker::relocate::*;
use prelinker::synth::{self, KernelSpec};
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::process::Command;

struct Run {
    ok: bool,
    /// The exit status.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn prelinker(args: &[&str]) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_prelinker"))
        .args(args)
        .output()
        .unwrap();
    Run {
        ok: o.status.success(),
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Writes the kernel and the modules into a fresh directory and runs `link`.
fn link_files(spec: &KernelSpec, mods: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, PathBuf, Run) {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("kernel.elf");
    std::fs::write(&k, synth::kernel_elf(spec)).unwrap();
    let out = dir.path().join("image.elf");
    let plan = dir.path().join("plan.json");
    let mut args = vec![
        "link".to_string(),
        "--kernel".into(),
        k.display().to_string(),
        "--output".into(),
        out.display().to_string(),
        "--plan-json".into(),
        plan.display().to_string(),
    ];
    for (name, data) in mods {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        args.push(p.display().to_string());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = prelinker(&a);
    (dir, out, r)
}

/// Asserts that linking fails, with every `want` in the message, and that
/// neither the image nor the plan (nor a temporary file) was left behind.
fn fails(spec: &KernelSpec, mods: &[(&str, Vec<u8>)], want: &[&str]) {
    let (dir, out, r) = link_files(spec, mods);
    assert!(!r.ok, "link succeeded: {}", r.stderr);
    for w in want {
        assert!(r.stderr.contains(w), "`{w}` missing from: {}", r.stderr);
    }
    assert!(!out.exists(), "output exists after a failed link");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n == "plan.json")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn def() -> KernelSpec {
    KernelSpec::default()
}

fn with_reloc(name: &str, sym: &str, r_type: u32, addend: i64) -> Vec<u8> {
    let mut b = ModBuilder::new(name);
    let s = b.undef(sym);
    let t = b.text;
    let o = b.code(&[0; 8]);
    b.reloc(t, o, s, addend, r_type);
    b.build()
}

#[test]
fn undefined_symbol() {
    let m = with_reloc("und", "no_such_thing", R_PLT32, -4);
    fails(
        &def(),
        &[("und.o", m)],
        &[
            "und.o",
            "undefined symbol `no_such_thing`",
            "section .text offset 0x10",
        ],
    );
}

#[test]
fn duplicate_module_name() {
    let a = ModBuilder::new("same").build();
    let b = ModBuilder::new("same").build();
    fails(
        &def(),
        &[("a.o", a), ("b.o", b)],
        &["duplicate module name `same`", "a.o", "b.o"],
    );
}

#[test]
fn two_modules_export_one_symbol() {
    let mk = |n: &str| {
        let mut b = ModBuilder::new(n).export("shared_fn");
        let t = b.text;
        b.global("shared_fn", t, 0);
        b.build()
    };
    fails(
        &def(),
        &[("one.o", mk("one")), ("two.o", mk("two"))],
        &["`shared_fn`", "one.o", "two.o", "exported by two modules"],
    );
}

#[test]
fn unsupported_relocation() {
    // R_X86_64_GOTOFF64 = 25
    let m = with_reloc("uns", "kapi_log", 25, 0);
    fails(
        &def(),
        &[("uns.o", m)],
        &[
            "unsupported relocation R_X86_64_GOTOFF64",
            "uns.o",
            "section .text",
            "offset 0x10",
        ],
    );
}

#[test]
fn relocation_overflow() {
    let m = with_reloc("ovf", "kapi_log", R_32, 0);
    fails(
        &def(),
        &[("ovf.o", m)],
        &[
            "relocation overflow",
            "R_X86_64_32",
            "ovf.o",
            "section .text",
            "offset 0x10",
            "`kapi_log`",
        ],
    );
}

#[test]
fn region_overflow() {
    let spec = KernelSpec {
        region_size: modtable::PerClass([4096, 4096, 4096]),
        ..def()
    };
    let mut b = ModBuilder::new("big");
    b.section(".data.big", SectionKind::Data, &[1; 5000], 8);
    fails(
        &spec,
        &[("big.o", b.build())],
        &[
            "kernel.elf: the data region is too small",
            "module `big`",
            "5056 bytes",
            "960 bytes more",
        ],
    );
    // An alignment no slot can be given.
    let mut b = ModBuilder::new("big");
    b.section(".data.big", SectionKind::Data, &[1; 8], 4 << 20);
    fails(
        &def(),
        &[("big.o", b.build())],
        &["big.o: section .data.big is aligned to 4194304 bytes, more than the 2 MiB"],
    );
}

#[test]
fn malformed_or_truncated_elf() {
    let m = ModBuilder::new("t").build();
    fails(
        &def(),
        &[("trunc.o", m[..m.len() - 200].to_vec())],
        &["trunc.o", "past the end"],
    );
    fails(
        &def(),
        &[("junk.o", b"hello, world".to_vec())],
        &["junk.o", "not an ELF file"],
    );
    fails(
        &def(),
        &[("short.o", m[..40].to_vec())],
        &["short.o", "truncated ELF header"],
    );
}

#[test]
fn not_x86_64_or_not_relocatable() {
    let mut o = object::write::Object::new(
        object::BinaryFormat::Elf,
        object::Architecture::I386,
        object::Endianness::Little,
    );
    let s = o.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    o.append_section_data(s, &[0xc3], 1);
    fails(
        &def(),
        &[("i386.o", o.write().unwrap())],
        &["i386.o", "32-bit ELF for i386"],
    );
    let exe = synth::kernel_elf(&def());
    fails(
        &def(),
        &[("exe.o", exe)],
        &[
            "exe.o",
            "an executable (ET_EXEC), expected a relocatable object",
        ],
    );
}

#[test]
fn dependency_missing() {
    let m = ModBuilder::new("nic").depends("pci").build();
    fails(
        &def(),
        &[("nic.o", m)],
        &["nic.o", "`nic` depends on module `pci`"],
    );
}

#[test]
fn dependency_cycle() {
    let a = ModBuilder::new("a").depends("b").build();
    let b = ModBuilder::new("b").depends("a").build();
    fails(
        &def(),
        &[("a.o", a), ("b.o", b)],
        &["dependency cycle", "`a` (", "`b` ("],
    );
}

#[test]
fn abi_mismatch_and_missing_probe() {
    let m = ModBuilder::new("x")
        .raw_modinfo(&["abi=3", "name=x"])
        .build();
    fails(&def(), &[("abi.o", m)], &["abi.o", "ABI version 3"]);
    let mut o = object::write::Object::new(
        object::BinaryFormat::Elf,
        object::Architecture::X86_64,
        object::Endianness::Little,
    );
    let s = o.add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::Other);
    o.append_section_data(s, b"abi=2\0name=np\0", 1);
    fails(
        &def(),
        &[("np.o", o.write().unwrap())],
        &["np.o", "__module_probe"],
    );
}

#[test]
fn tls_is_rejected() {
    let mut b = ModBuilder::new("tls");
    b.section(".tdata", SectionKind::Tls, &[0; 8], 8);
    fails(&def(), &[("tls.o", b.build())], &["tls.o", ".tdata", "TLS"]);
}

/// The names of the files in `dir`, sorted.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A failed link leaves an earlier image and plan exactly as they were (and
/// no temporary file).
#[test]
fn failed_link_leaves_earlier_outputs_untouched() {
    let (dir, out, r) = link_files(&def(), &[("ok.o", ModBuilder::new("ok").build())]);
    assert!(r.ok, "{}", r.stderr);
    let plan = dir.path().join("plan.json");
    let (old_image, old_plan) = (std::fs::read(&out).unwrap(), std::fs::read(&plan).unwrap());
    let before = files_in(dir.path());
    let bad = dir.path().join("bad.o");
    std::fs::write(&bad, b"junk").unwrap();
    // Junk, and a module whose symbol does not resolve (found only after
    // every input was read and laid out).
    let und = dir.path().join("und.o");
    std::fs::write(&und, with_reloc("und", "no_such_thing", R_PLT32, -4)).unwrap();
    for m in [&bad, &und] {
        let r = prelinker(&[
            "link",
            "--kernel",
            dir.path().join("kernel.elf").to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--plan-json",
            plan.to_str().unwrap(),
            dir.path().join("ok.o").to_str().unwrap(),
            m.to_str().unwrap(),
        ]);
        assert_eq!(r.code, Some(1), "{}", r.stderr);
        assert!(
            std::fs::read(&out).unwrap() == old_image,
            "the old image changed"
        );
        assert_eq!(
            std::fs::read(&plan).unwrap(),
            old_plan,
            "the old plan changed"
        );
        let mut now = files_in(dir.path());
        now.retain(|n| n != "bad.o" && n != "und.o");
        assert_eq!(now, before, "files left behind or removed");
    }
}

/// Every byte of every file in `dir`, to see that a refused command changed
/// nothing.
fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    files_in(dir)
        .into_iter()
        .map(|n| {
            let p = dir.join(&n);
            let data = if p.is_dir() {
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            (n, data)
        })
        .collect()
}

/// An output that is an input, links to one (symbolic or hard link, or a
/// path spelt differently), or is the other output is refused before
/// anything is read or written, naming both paths.
#[test]
fn output_that_is_an_input_is_refused() {
    let (dir, out, r) = link_files(&def(), &[("m.o", ModBuilder::new("m").build())]);
    assert!(r.ok, "{}", r.stderr);
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    std::os::unix::fs::symlink(d.join("kernel.elf"), d.join("k-sym.elf")).unwrap();
    std::fs::hard_link(d.join("m.o"), d.join("m-hard.o")).unwrap();
    std::os::unix::fs::symlink(&out, d.join("image-sym.elf")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("boot.log"), b"REPORT {}\n").unwrap();
    std::fs::write(
        d.join("lib.a"),
        ar(&[("m.o", &ModBuilder::new("m").build())]),
    )
    .unwrap();
    let link = |output: &str, plan: Option<&str>, kernel: &str| {
        let mut v = vec![
            "link".to_string(),
            "--kernel".into(),
            kernel.into(),
            "--output".into(),
            output.into(),
        ];
        if let Some(pl) = plan {
            v.extend(["--plan-json".into(), pl.into()]);
        }
        v.push(p("m.o"));
        v
    };
    let kernel = p("kernel.elf");
    let cases: Vec<(Vec<String>, [String; 2])> = vec![
        // --output is the kernel, by its own path and spelt differently.
        (
            link(&kernel, None, &kernel),
            [kernel.clone(), kernel.clone()],
        ),
        (
            link(&format!("{}/sub/../kernel.elf", d.display()), None, &kernel),
            ["sub/../kernel.elf".into(), kernel.clone()],
        ),
        // A symbolic link to the kernel, a hard link to a module.
        (
            link(&p("k-sym.elf"), None, &kernel),
            [p("k-sym.elf"), kernel.clone()],
        ),
        (
            link(&p("m-hard.o"), None, &kernel),
            [p("m-hard.o"), p("m.o")],
        ),
        // The kernel is a symbolic link to the output.
        (
            link(&p("image.elf"), None, &p("image-sym.elf")),
            [p("image.elf"), p("image-sym.elf")],
        ),
        // --plan-json is a module input, or the kernel.
        (
            link(&p("new.elf"), Some(&p("m.o")), &kernel),
            [p("m.o"), p("m.o")],
        ),
        (
            link(&p("new.elf"), Some(&p("k-sym.elf")), &kernel),
            [p("k-sym.elf"), kernel.clone()],
        ),
        // --output and --plan-json are one file, existing or not.
        (
            link(&p("new.elf"), Some(&p("new.elf")), &kernel),
            [p("new.elf"), p("new.elf")],
        ),
        (
            link(&p("image.elf"), Some(&p("image-sym.elf")), &kernel),
            [p("image-sym.elf"), p("image.elf")],
        ),
        // An output that is a directory or a device.
        (
            link(&p("sub"), None, &kernel),
            [p("sub"), "not a regular file".into()],
        ),
        (
            link("/dev/null", None, &kernel),
            ["/dev/null".into(), "not a regular file".into()],
        ),
        // extract and report.
        (
            vec!["extract".into(), p("lib.a"), "--output".into(), p("lib.a")],
            [p("lib.a"), "the archive".into()],
        ),
        (
            vec![
                "report".into(),
                p("boot.log"),
                "--svg".into(),
                p("boot.log"),
            ],
            [p("boot.log"), "the boot log".into()],
        ),
    ];
    for (args, want) in cases {
        let before = snapshot(d);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = prelinker(&a);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        for w in &want {
            assert!(
                r.stderr.contains(w.as_str()),
                "{args:?}: `{w}` missing from: {}",
                r.stderr
            );
        }
        assert!(snapshot(d) == before, "{args:?} changed the directory");
    }
    assert!(
        std::fs::symlink_metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn link_inspect_extract() {
    let mut pci = ModBuilder::new("pci").export("pci_read");
    let t = pci.text;
    pci.global("pci_read", t, 0);
    let pci = pci.build();
    let nic = {
        let mut b = ModBuilder::new("nic").depends("pci");
        let s = b.undef("pci_read");
        let t = b.text;
        let o = b.code(&[0; 8]);
        b.reloc(t, o, s, -4, R_PLT32);
        b.build()
    };
    let lib = ar(&[("x.o", &nic)]);
    let (dir, out, r) = link_files(&def(), &[("libnic.a", lib.clone()), ("pci.o", pci)]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stderr.contains("2 modules"), "{}", r.stderr);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(plan["modules"][0]["name"], "pci");
    assert_eq!(plan["modules"][1]["deps"][0], "pci");
    let r = prelinker(&["inspect", out.to_str().unwrap(), "--json"]);
    assert!(r.ok, "{}", r.stderr);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["regions"], plan["regions"]);
    assert_eq!(j["slot_align"], plan["slot_align"]);
    assert_eq!(j["modules"][1]["classes"], plan["modules"][1]["classes"]);
    assert_eq!(j["totals"]["page_aligned"], plan["totals"]["page_aligned"]);
    assert_eq!(j["modules"][1]["checksum"], plan["modules"][1]["checksum"]);
    let r = prelinker(&["inspect", out.to_str().unwrap()]);
    assert!(
        r.ok && r.stdout.contains("nic") && r.stdout.contains("page-aligned"),
        "{}",
        r.stdout
    );
    // inspect of an image that was never prelinked
    let r = prelinker(&["inspect", dir.path().join("kernel.elf").to_str().unwrap()]);
    assert!(!r.ok && r.stderr.contains("not prelinked"), "{}", r.stderr);
    // extract
    let a = dir.path().join("libnic.a");
    let x = dir.path().join("nic_extracted.o");
    let r = prelinker(&[
        "extract",
        a.to_str().unwrap(),
        "--output",
        x.to_str().unwrap(),
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(std::fs::read(&x).unwrap(), nic);
}

/// The command line writes the image sparsely (kernel bytes outside the
/// regions, then the patches): it must equal the in-memory image of
/// `prelinker::link`, and relinking with an already prelinked image as the
/// kernel must give the same bytes again (nothing stale survives).
#[test]
fn written_image_equals_in_memory_image() {
    let a = ModBuilder::new("a").build();
    let b = ModBuilder::new("b").build();
    let mods = [("a.o", a.clone()), ("b.o", b.clone())];
    let (dir, out, r) = link_files(&def(), &mods);
    assert!(r.ok, "{}", r.stderr);
    let kernel = synth::kernel_elf(&def());
    let inputs = vec![input("a.o", a), input("b.o", b)];
    let mem = prelinker::link("kernel.elf", &kernel, &inputs, &Default::default()).unwrap();
    let written = std::fs::read(&out).unwrap();
    assert_eq!(written.len(), mem.image.len());
    assert!(
        written == mem.image,
        "written image differs from the in-memory one"
    );
    // Relink only module `a`, from the prelinked image: module b's bytes and
    // table entry must be gone.
    let again = dir.path().join("again.elf");
    let r = prelinker(&[
        "link",
        "--kernel",
        out.to_str().unwrap(),
        "--output",
        again.to_str().unwrap(),
        dir.path().join("a.o").to_str().unwrap(),
    ]);
    assert!(r.ok, "{}", r.stderr);
    let only_a = prelinker::link("kernel.elf", &kernel, &inputs[..1], &Default::default()).unwrap();
    assert!(
        std::fs::read(&again).unwrap() == only_a.image,
        "stale bytes survived a relink"
    );
}

/// Every command has `--help` with the exit statuses; a bad command line
/// exits with 2, a link or input error with 1.
#[test]
fn help_and_exit_status() {
    for cmd in [
        &["--help"][..],
        &["link", "--help"],
        &["extract", "--help"],
        &["inspect", "--help"],
        &["report", "--help"],
        &["help", "link"],
    ] {
        let r = prelinker(cmd);
        assert_eq!(r.code, Some(0), "{cmd:?}: {}", r.stderr);
        assert!(
            r.stdout.contains("Usage: prelinker")
                && r.stdout.contains("Exit status:")
                && r.stdout.contains("2  usage error"),
            "{cmd:?}: {}",
            r.stdout
        );
    }
    let r = prelinker(&["link", "--help"]);
    for opt in [
        "--kernel",
        "--output",
        "--slot-align",
        "--plan-json",
        "[MODULE]...",
    ] {
        assert!(r.stdout.contains(opt), "{opt} missing from: {}", r.stdout);
    }
    // Usage errors: no command, an unknown one, a missing or unknown option,
    // a bad number, an option without its value, a bad slot alignment.
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("kernel.elf");
    std::fs::write(&k, synth::kernel_elf(&def())).unwrap();
    let k = k.to_str().unwrap();
    let out = dir.path().join("image.elf");
    let out = out.to_str().unwrap();
    for args in [
        &[][..],
        &["frobnicate"],
        &["link", "--kernel", k],
        &["link", "--kernel", k, "--output", out, "--bogus"],
        &[
            "link",
            "--kernel",
            k,
            "--output",
            out,
            "--slot-align",
            "lots",
        ],
        &["link", "--kernel", k, "--output"],
        &["link", "--kernel", k, "--output", out, "--slot-align", "3"],
        &["inspect"],
        &["inspect", "a", "b"],
        &["extract", "lib.a"],
        &["report"],
    ] {
        let r = prelinker(args);
        assert_eq!(r.code, Some(2), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(!r.stderr.is_empty(), "{args:?}: no message");
        assert!(
            !std::path::Path::new(out).exists(),
            "{args:?} wrote the output"
        );
    }
    // A link error and an input error.
    let bad = dir.path().join("bad.o");
    std::fs::write(&bad, b"junk").unwrap();
    let r = prelinker(&[
        "link",
        "--kernel",
        k,
        "--output",
        out,
        bad.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("bad.o"), "{}", r.stderr);
    let r = prelinker(&["inspect", dir.path().join("missing.elf").to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("missing.elf"), "{}", r.stderr);
    // Options work in either spelling and after the positionals; a repeated
    // option takes its last value.
    let m = dir.path().join("m.o");
    std::fs::write(&m, ModBuilder::new("m").build()).unwrap();
    let out_arg = format!("--output={out}");
    let r = prelinker(&[
        "link",
        m.to_str().unwrap(),
        "--slot-align",
        "0x10",
        "--kernel",
        k,
        &out_arg,
        "--slot-align=0x2000",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let r = prelinker(&["inspect", "--json", out]);
    assert!(r.ok, "{}", r.stderr);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["slot_align"], 0x2000);
}

/// Special files and junk given to any command are refused with exit status
/// 1 and the file named; a large junk file is refused from its first bytes
/// (the command runs in a data limit smaller than the file).
#[test]
fn special_and_junk_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = d.join("kernel.elf");
    std::fs::write(&k, synth::kernel_elf(&def())).unwrap();
    let junk = d.join("junk.bin");
    std::fs::write(&junk, b"not an object at all").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&junk)
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    let m = d.join("m.o");
    std::fs::write(&m, ModBuilder::new("m").build()).unwrap();
    let out = d.join("out.elf");
    let (k, m, out) = (
        k.to_str().unwrap(),
        m.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    for bad in ["/dev/zero", junk.to_str().unwrap()] {
        let want = if bad == "/dev/zero" {
            "not a regular file"
        } else {
            "bad magic"
        };
        for args in [
            vec!["link", "--kernel", k, "--output", out, m, bad],
            vec!["link", "--kernel", bad, "--output", out, m],
            vec!["inspect", bad],
            vec!["extract", bad, "--output", out],
        ] {
            let o = Command::new("sh")
                .arg("-c")
                .arg("ulimit -d 131072 && exec \"$@\"")
                .arg("sh")
                .arg(env!("CARGO_BIN_EXE_prelinker"))
                .args(&args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("{bad}: ")) && stderr.contains(want),
                "{args:?}: {stderr}"
            );
            assert!(!std::path::Path::new(out).exists());
        }
    }
    let r = prelinker(&["report", "/dev/zero"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("/dev/zero: not a regular file"),
        "{}",
        r.stderr
    );
}

/// Module names are `[a-z][a-z0-9_]{0,31}`: anything else is refused,
/// naming the file and the name.
#[test]
fn bad_module_names() {
    let long = "n".repeat(33);
    for bad in [
        "Upper",
        "9lives",
        "has-dash",
        "_under",
        "dot.ted",
        long.as_str(),
    ] {
        let m = ModBuilder::new(bad).build();
        fails(
            &def(),
            &[("bad.o", m)],
            &[
                &format!("bad.o: module name `{bad}` is not valid"),
                "[a-z][a-z0-9_]{0,31}",
            ],
        );
    }
    let ok = "n".repeat(32);
    let (_dir, _out, r) = link_files(&def(), &[("ok.o", ModBuilder::new(&ok).build())]);
    assert!(r.ok, "{}", r.stderr);
}

/// The file range of section `name` of an ELF file.
fn section_file_range(data: &[u8], name: &str) -> (usize, usize) {
    use object::{Object, ObjectSection};
    let f = object::File::parse(data).unwrap();
    let (off, size) = f.section_by_name(name).unwrap().file_range().unwrap();
    (off as usize, size as usize)
}

/// `inspect` verifies the checksums the kernel checks at boot: one flipped
/// byte of a module's text makes it fail naming that module and both
/// checksums; one in the table fails the table checksum; a byte in slot
/// padding (not part of any module) changes nothing.
#[test]
fn inspect_verifies_checksums() {
    let nic = {
        let mut b = ModBuilder::new("nic");
        let s = b.undef("kapi_log");
        let t = b.text;
        let o = b.code(&[0x90; 8]);
        b.reloc(t, o, s, -4, R_PLT32);
        b.build()
    };
    let mods = [("pci.o", ModBuilder::new("pci").build()), ("nic.o", nic)];
    let (dir, out, r) = link_files(&def(), &mods);
    assert!(r.ok, "{}", r.stderr);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(plan["modules"][1]["name"], "nic");
    let stored = plan["modules"][1]["checksum"].as_str().unwrap().to_string();
    let r = prelinker(&["inspect", out.to_str().unwrap()]);
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("checksums verified: the module table and 2 modules"),
        "{}",
        r.stdout
    );
    let good = std::fs::read(&out).unwrap();
    let (text, _) = section_file_range(&good, ".modules.text");
    let nic_text = text
        + plan["modules"][1]["classes"]["text"]["slot_off"]
            .as_u64()
            .unwrap() as usize;
    let used = plan["modules"][1]["classes"]["text"]["size"]
        .as_u64()
        .unwrap() as usize;
    let run = |image: &[u8]| {
        let p = dir.path().join("damaged.elf");
        std::fs::write(&p, image).unwrap();
        prelinker(&["inspect", p.to_str().unwrap()])
    };
    // Every byte of the module's text counts: the first, one in the
    // relocated field, the last.
    for at in [0, 17, used - 1] {
        let mut bad = good.clone();
        bad[nic_text + at] ^= 0x01;
        let r = run(&bad);
        assert_eq!(r.code, Some(1), "byte {at}: {}", r.stderr);
        assert!(
            r.stderr.contains("module `nic` (#1): checksum mismatch")
                && r.stderr.contains(&format!("table {stored}"))
                && r.stderr.contains("image bytes 0x"),
            "byte {at}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("`pci`"), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    // Padding after the module's used bytes is not checked (nor by the
    // kernel).
    let mut pad = good.clone();
    pad[nic_text + used] ^= 0xff;
    assert!(run(&pad).ok);
    // The table: a byte of its strings (the module names).
    let (tab, _) = section_file_range(&good, ".modtable");
    let at = good[tab..tab + 4096]
        .windows(6)
        .position(|w| w == b"pcinic")
        .unwrap();
    let mut bad = good.clone();
    bad[tab + at] = b'q';
    let r = run(&bad);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("module table checksum") && r.stderr.contains("does not match stored"),
        "{}",
        r.stderr
    );
}

/// `report` reads a boot log that has bytes which are not UTF-8 outside its
/// REPORT line (firmware noise, a module's garbage, CRLF line ends).
#[test]
fn report_reads_a_log_with_non_utf8_bytes() {
    use report::{Classes, Hex, Module, Outcome, Report};
    let addr = Classes {
        text: Hex(0x1000),
        rodata: Hex(0x9000),
        data: Hex(0x11000),
    };
    let m = Module {
        slot: Classes {
            text: 4096,
            rodata: 4096,
            data: 0,
        },
        used: Classes {
            text: 300,
            rodata: 20,
            data: 0,
        },
        packed: Classes {
            text: 300,
            rodata: 20,
            data: 0,
        },
        old_addr: addr,
        new_addr: Classes {
            text: Some(addr.text),
            rodata: Some(addr.rodata),
            data: Some(addr.data),
        },
        relocs_redone: 7,
        probe_ns: 12000,
        ..Module::new("uart_com1", Outcome::Kept)
    };
    let mut r = Report {
        policy: "compact".into(),
        modules: vec![m],
        reclaimed_bytes: 4096,
        ..Report::default()
    };
    r.regions.text.freed = vec![[Hex(0x2000), Hex(0x3000)]];
    let report = r.to_json();
    let mut log =
        b"\x1b[2J\x1b[01;01HSeaBIOS (version \xff\xfe)\r\nBooting from ROM..\xc3\x28\r\n".to_vec();
    log.extend_from_slice(
        format!("[   0.1] INFO  modules: 1 in the table\r\nREPORT {report}\r\n").as_bytes(),
    );
    log.extend_from_slice(b"qemu: \x80\x81 terminating\n");
    assert!(std::str::from_utf8(&log).is_err());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("boot.log");
    std::fs::write(&p, &log).unwrap();
    let svg = dir.path().join("map.svg");
    let r = prelinker(&[
        "report",
        p.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("uart_com1") && r.stdout.contains("reclaimed 4096 bytes"),
        "{}",
        r.stdout
    );
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    // Without a REPORT line the error names the log.
    std::fs::write(&p, b"\xff\xfe no report\n").unwrap();
    let r = prelinker(&["report", p.to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("boot.log: no REPORT line"),
        "{}",
        r.stderr
    );
}

/// A module object `grower` whose one function, `grower::work` (mangled
/// with a hash), has `work` bytes of code.
fn grower(work: usize) -> Vec<u8> {
    let mut b = ModBuilder::new("grower");
    let s = b.section(".text.work", SectionKind::Text, &vec![0x90; work], 16);
    let f = b.local("_ZN6grower4work17h0123456789abcdefE", s, 0);
    b.obj.symbol_mut(f).size = work as u64;
    b.build()
}

/// Links `grower(work)` in a fresh directory: (dir, image, module object,
/// the plan's text bytes of the module).
fn link_grower(work: usize) -> (tempfile::TempDir, String, String, u64) {
    let (dir, out, r) = link_files(&def(), &[("grower.o", grower(work))]);
    assert!(r.ok, "{}", r.stderr);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    let text = plan["modules"][0]["classes"]["text"]["size"]
        .as_u64()
        .unwrap();
    let obj = dir.path().join("grower.o").display().to_string();
    (dir, out.display().to_string(), obj, text)
}

/// `sizes`: a baseline written from one build, then the module grown in a
/// copy by exactly its budget (1 KiB: 5 % of its text is less) passes, and
/// by one byte more fails, naming the module, the class and the growth,
/// with the symbol's growth in the bloat-o-meter diff.
#[test]
fn sizes_fail_past_the_budget() {
    let (base_dir, image, obj, old_text) = link_grower(4000);
    let baseline = base_dir.path().join("baseline.json");
    let baseline = baseline.to_str().unwrap();
    let r = prelinker(&["sizes", &image, &obj, "--write-baseline", baseline]);
    assert!(r.ok, "{}", r.stderr);
    let r = prelinker(&["sizes", &image, &obj, "--json"]);
    assert!(r.ok, "{}", r.stderr);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let m = &j["modules"][0];
    assert_eq!(m["name"], "grower");
    assert_eq!(m["used"]["text"].as_u64(), Some(old_text));
    assert_eq!(
        m["symbols"][0],
        serde_json::json!({"name": "grower::work", "class": "text", "size": 4000}),
        "demangled without the hash: {m}"
    );
    let r = prelinker(&["sizes", &image, &obj, "--baseline", baseline]);
    assert!(r.ok, "unchanged module failed: {}{}", r.stdout, r.stderr);

    let (_dir, image, obj, text) = link_grower(4000 + 1024);
    assert_eq!(text, old_text + 1024);
    let r = prelinker(&["sizes", &image, &obj, "--baseline", baseline]);
    assert!(
        r.ok,
        "growth of exactly the budget failed: {}{}",
        r.stdout, r.stderr
    );

    let (_dir, image, obj, text) = link_grower(4000 + 1025);
    assert_eq!(text, old_text + 1025);
    let r = prelinker(&["sizes", &image, &obj, "--baseline", baseline]);
    assert!(!r.ok, "growth past the budget passed: {}", r.stdout);
    let want = format!(
        "module grower text grew by 1025 bytes ({old_text} -> {text}), over its budget of 1024 bytes"
    );
    assert!(
        r.stderr.contains(&want),
        "`{want}` missing from: {}",
        r.stderr
    );
    assert!(r.stderr.contains("make sizes-update"), "{}", r.stderr);
    assert!(
        r.stdout.lines().any(|l| l.starts_with("grower ")
            && l.contains(&format!(" {old_text} "))
            && l.contains(" +1025 ")
            && l.ends_with("OVER BUDGET")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("grower::work") && l.ends_with("4000     5025    +1025")),
        "{}",
        r.stdout
    );
}

/// `sizes` input errors exit with status 1 (not the usage status 2): an
/// object that is not one of the image's modules, and a baseline that is
/// not a regular file (like every input).
#[test]
fn sizes_input_errors() {
    let (dir, image, obj, _) = link_grower(4000);
    let other = dir.path().join("stranger.o");
    std::fs::write(&other, ModBuilder::new("stranger").build()).unwrap();
    let r = prelinker(&["sizes", &image, other.to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("module `stranger` is not in"),
        "{}",
        r.stderr
    );
    let r = prelinker(&["sizes", &image, &obj, &obj]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("module `grower` was given already, by"),
        "{}",
        r.stderr
    );
    let grown = dir.path().join("grown.o");
    std::fs::write(&grown, grower(4100)).unwrap();
    let r = prelinker(&["sizes", &image, grown.to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("module `grower` has 4116 bytes of text here but 4016 in")
            && r.stderr
                .contains("not the object the image was linked from"),
        "{}",
        r.stderr
    );
    let r = prelinker(&["inspect", &obj]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("it is not a prelinked kernel image: it has no .modules.text section"),
        "{}",
        r.stderr
    );
    let as_dir = dir.path().display().to_string();
    let r = prelinker(&["sizes", &image, &obj, "--baseline", &as_dir]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
}

/// A module whose probe symbol has `value` in its 16-byte `.text`.
fn probe_at(value: u64) -> Vec<u8> {
    let mut b = ModBuilder::new("m");
    let probe = b.obj.symbol_id(b"__module_probe").unwrap();
    b.obj.symbol_mut(probe).value = value;
    b.build()
}

/// Module `m` with an 8-byte `.rodata.x` and local symbol `name` at
/// `value` in it, which an `R_X86_64_64` field in its text refers to.
fn reloc_into_rodata(name: &str, value: u64) -> Vec<u8> {
    let mut b = ModBuilder::new("m");
    let ro = b.section(".rodata.x", SectionKind::ReadOnlyData, &[0x11; 8], 8);
    let sym = b.local(name, ro, value);
    let t = b.text;
    let o = b.code(&[0; 8]);
    b.reloc(t, o, sym, 0, R_64);
    b.build()
}

/// A symbol past the end of its section, or an entry at its section's
/// end, is refused naming the symbol, the section and its size, once per
/// file (no panic, whatever the value); a kernel whose regions are not in
/// the top 2 GiB is refused naming the region.
#[test]
fn symbols_outside_their_sections_and_regions_outside_the_code_model() {
    let far = reloc_into_rodata("far", 0x100);
    let (_dir, _out, r) = link_files(&def(), &[("m.o", far)]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("m.o (R_X86_64_64 at section .text offset 0x10): symbol `far` has value 0x100, past the end of its section .rodata.x (8 bytes)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("m.o").count(), 1, "{}", r.stderr);
    for value in [0xffff_ffff_ffff_0000, 0x8000_0000, 17] {
        fails(
            &def(),
            &[("m.o", probe_at(value))],
            &[&format!(
                "symbol `__module_probe` has value {value:#x}, past the end of its section .text (16 bytes)"
            )],
        );
    }
    fails(
        &def(),
        &[("m.o", probe_at(16))],
        &[
            "entry symbol `__module_probe` is at offset 0x10 of section .text, which has only 16 bytes",
        ],
    );
    let (_dir, _out, r) = link_files(&def(), &[("m.o", probe_at(15))]);
    assert!(r.ok, "{}", r.stderr);
    fails(
        &KernelSpec {
            region_base: Some(0x40_0000),
            ..def()
        },
        &[("m.o", ModBuilder::new("m").build())],
        &[
            "kernel.elf: the text region (.modules.text) is at 0x400000",
            "top 2 GiB",
        ],
    );
}

/// Every `.modinfo` part must end its last entry (one that did not would
/// run into the next part's first), a `depends=` must name a module, and
/// an archive with no members or no readable module says so.
#[test]
fn modinfo_parts_dependency_names_and_archives() {
    let mut b = ModBuilder::new("m");
    let part = b
        .obj
        .add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::Other);
    b.obj.append_section_data(part, b"depends=pci", 1);
    fails(
        &def(),
        &[("m.o", b.build())],
        &["m.o: .modinfo section", "does not end with a NUL byte"],
    );
    fails(
        &def(),
        &[("m.o", ModBuilder::new("m").depends("Pci-X").build())],
        &["m.o: .modinfo entry depends=Pci-X does not name a module"],
    );
    fails(
        &def(),
        &[("m.o", ModBuilder::new("m").depends("").build())],
        &["m.o: .modinfo entry depends= does not name a module"],
    );
    fails(
        &def(),
        &[("lib.a", ar(&[]))],
        &["lib.a: the archive has no members (is it truncated?)"],
    );
    fails(
        &def(),
        &[("lib.a", ar(&[("junk.o", b"not elf")]))],
        &[
            "lib.a: no archive member has a .modinfo section, and member `junk.o` is not a readable ELF object",
        ],
    );
}

/// An output that is a symbolic link to a file is written in place of that
/// file (the link stays a link); one to nothing is refused, and nothing is
/// created.
#[test]
fn an_output_symlink_is_written_through() {
    let (dir, out, r) = link_files(&def(), &[("m.o", ModBuilder::new("m").build())]);
    assert!(r.ok, "{}", r.stderr);
    let d = dir.path();
    let image = std::fs::read(&out).unwrap();
    std::fs::create_dir(d.join("real")).unwrap();
    std::fs::write(d.join("real/old.elf"), b"old").unwrap();
    std::os::unix::fs::symlink("real/old.elf", d.join("link.elf")).unwrap();
    std::os::unix::fs::symlink("real/none.elf", d.join("dangling.elf")).unwrap();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    let link = |output: &str| {
        prelinker(&[
            "link",
            "--kernel",
            &p("kernel.elf"),
            "--output",
            output,
            &p("m.o"),
        ])
    };
    let r = link(&p("link.elf"));
    assert!(r.ok, "{}", r.stderr);
    let meta = std::fs::symlink_metadata(d.join("link.elf")).unwrap();
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read(d.join("real/old.elf")).unwrap() == image);
    // Names only: the dangling link cannot be read.
    let before = (files_in(d), snapshot(&d.join("real")));
    let r = link(&p("dangling.elf"));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("dangling.elf is a symbolic link to nothing that exists"),
        "{}",
        r.stderr
    );
    assert!(
        (files_in(d), snapshot(&d.join("real"))) == before,
        "a refused output changed the directory"
    );
}

/// Sets the 32-bit field at byte `field` of section header `index`.
fn patch_header(obj: &mut [u8], index: usize, field: usize, v: u32) {
    let shoff = u64::from_le_bytes(obj[0x28..0x30].try_into().unwrap()) as usize;
    let at = shoff + 64 * index + field;
    obj[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The index of section `name` of `obj`.
fn section_index(obj: &[u8], name: &str) -> usize {
    use object::{Object, ObjectSection};
    let f = object::File::parse(obj).unwrap();
    f.section_by_name(name).unwrap().index().0
}

/// Damage that would have an object's sections, relocations or symbols
/// silently misread is refused: a section header 0 that is not the null
/// section, an allocated section neither PROGBITS nor NOBITS, relocations
/// whose sh_info names another section than their name, a relocation
/// against the null symbol, an IFUNC, an `abi=` that only parses as the
/// version.
#[test]
fn damage_that_would_be_misread_is_refused() {
    let with_reloc = || reloc_into_rodata("ro", 0);
    let mut sec0 = with_reloc();
    patch_header(&mut sec0, 0, 4, 4);
    fails(
        &def(),
        &[("m.o", sec0)],
        &["m.o: section header 0 is not the null section (type 4)"],
    );
    let mut b = ModBuilder::new("m");
    b.section_flags(".note.m", 7, 2, &[0; 16], 4);
    fails(
        &def(),
        &[("m.o", b.build())],
        &[
            "m.o: section .note.m is allocated but of type 7; only PROGBITS and NOBITS sections are placed",
        ],
    );
    let mut moved = with_reloc();
    let comment = section_index(&moved, ".rodata.x");
    let rela = section_index(&moved, ".rela.text");
    patch_header(&mut moved, rela, 44, comment as u32);
    fails(
        &def(),
        &[("m.o", moved)],
        &[&format!(
            "m.o: relocation section .rela.text applies to section {comment} (.rodata.x), not .text"
        )],
    );
    let mut null = with_reloc();
    let (off, _) = section_file_range(&null, ".rela.text");
    null[off + 12..off + 16].fill(0);
    fails(
        &def(),
        &[("m.o", null)],
        &["m.o: R_X86_64_64 at section .text offset 0x10 refers to the null symbol (index 0)"],
    );
    let mut b = ModBuilder::new("m");
    let probe = b.obj.symbol_id(b"__module_probe").unwrap();
    b.obj.symbol_mut(probe).flags = object::SymbolFlags::Elf {
        st_info: object::elf::SymbolInfo((1 << 4) | 10),
        st_other: object::elf::SymbolOther(0),
    };
    fails(
        &def(),
        &[("m.o", b.build())],
        &["m.o: symbol `__module_probe` is an indirect function (STT_GNU_IFUNC)"],
    );
    fails(
        &def(),
        &[(
            "m.o",
            ModBuilder::new("m")
                .raw_modinfo(&["abi=+2", "name=m"])
                .build(),
        )],
        &["m.o: module ABI version +2 does not match"],
    );
}

/// A module importing another module's function with another signature
/// than the exporter records, or a kernel service with another signature
/// than the kernel's, is refused naming the module, the symbol and both
/// signatures; with matching signatures the same pair links.
#[test]
fn import_signatures_must_match_the_exporter() {
    let exporter = || {
        let mut pci = ModBuilder::new("pci").export_with_sig("pci_read", "fn(u32) -> u32");
        let t = pci.text;
        pci.global("pci_read", t, 0);
        pci.build()
    };
    let importer = |sig: &str| {
        let mut b = ModBuilder::new("nic")
            .depends("pci")
            .import_sig("pci_read", sig);
        let s = b.undef("pci_read");
        let t = b.text;
        let o = b.code(&[0; 8]);
        b.reloc(t, o, s, -4, R_PLT32);
        b.build()
    };
    let (_d, _o, r) = link_files(
        &def(),
        &[("pci.o", exporter()), ("nic.o", importer("fn(u32) -> u32"))],
    );
    assert!(r.ok, "matching signatures: {}", r.stderr);
    fails(
        &def(),
        &[("pci.o", exporter()), ("nic.o", importer("fn(u64) -> u32"))],
        &[
            "nic.o",
            "module `nic` imports `pci_read` as `fn(u64) -> u32`",
            "module `pci`",
            "exports `fn(u32) -> u32`",
        ],
    );
    let mut b = ModBuilder::new("logger").import_sig("kapi_log", "fn(u64, *const u8, usize)");
    let s = b.undef("kapi_log");
    let t = b.text;
    let o = b.code(&[0; 8]);
    b.reloc(t, o, s, -4, R_PLT32);
    fails(
        &def(),
        &[("logger.o", b.build())],
        &[
            "module `logger` imports `kapi_log` as `fn(u64, *const u8, usize)`",
            "the kernel exports `fn(u32,",
        ],
    );
}

/// An import or export whose signature is not recorded is refused, naming
/// the module, the symbol and the macro that records it: a kernel service
/// imported without `import_sig`, a module's function imported without it,
/// and one exported without `export_sig`.
#[test]
fn unrecorded_signatures_are_refused() {
    // `b` with a call to `sym`, whose signature it records if `signed`.
    let caller = |sym: &str, mut b: ModBuilder, signed: bool| {
        let s = b.undef(sym);
        let t = b.text;
        let o = b.code(&[0; 8]);
        b.reloc(t, o, s, -4, R_PLT32);
        if !signed {
            b = b.no_import_sig(sym);
        }
        b.build()
    };
    fails(
        &def(),
        &[(
            "logger.o",
            caller("kapi_log", ModBuilder::new("logger"), false),
        )],
        &[
            "logger.o",
            "module `logger` imports kernel service `kapi_log` but records no signature for it",
        ],
    );
    let exporter = |signed: bool| {
        let mut pci = if signed {
            ModBuilder::new("pci").export_with_sig("pci_read", "fn(u32) -> u32")
        } else {
            ModBuilder::new("pci").export_unsigned("pci_read")
        };
        let t = pci.text;
        pci.global("pci_read", t, 0);
        pci.build()
    };
    fails(
        &def(),
        &[
            ("pci.o", exporter(true)),
            (
                "nic.o",
                caller("pci_read", ModBuilder::new("nic").depends("pci"), false),
            ),
        ],
        &[
            "nic.o",
            "module `nic` imports `pci_read` from module `pci` without a recorded signature (import it with import_fn!)",
        ],
    );
    fails(
        &def(),
        &[
            ("pci.o", exporter(false)),
            (
                "nic.o",
                caller(
                    "pci_read",
                    ModBuilder::new("nic")
                        .depends("pci")
                        .import_sig("pci_read", "fn(u32) -> u32"),
                    true,
                ),
            ),
        ],
        &[
            "pci.o",
            "module `pci` exports `pci_read` without a recorded signature (export it with export_fn!)",
        ],
    );
}

/// `PRELINKER_TIMES` prints the command's phases and the link's own, in
/// order; without it none are printed.
#[test]
fn prelinker_times_prints_the_phases() {
    let (dir, out, plain) = link_files(&def(), &[("a.o", ModBuilder::new("a").build())]);
    assert!(plain.ok, "{}", plain.stderr);
    assert!(!plain.stderr.contains(" ms\n"), "{}", plain.stderr);
    let k = dir.path().join("kernel.elf");
    let a = dir.path().join("a.o");
    let o = Command::new(env!("CARGO_BIN_EXE_prelinker"))
        .env("PRELINKER_TIMES", "1")
        .args(["link", "--kernel"])
        .arg(&k)
        .arg("--output")
        .arg(&out)
        .arg(&a)
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let phases = [
        "prelinker: read kernel: ",
        "prelinker:   read and prepare the modules: ",
        "prelinker:   order the modules and assign slots: ",
        "prelinker:   relocate, checksum and write the modules: ",
        "prelinker:   build the table: ",
        "prelinker: read, link and write modules: ",
        "prelinker: rename into place: ",
    ];
    let mut at = 0;
    for p in phases {
        let i = err[at..]
            .find(p)
            .unwrap_or_else(|| panic!("no `{p}` after byte {at} in:\n{err}"));
        at += i + p.len();
    }
}
