//! Modules loaded after boot: objects from `tests/runtime-modules/`
//! (`make runtime-modules`) packed into an initrd by the `initrd` crate,
//! loaded with `load=` or the shell's `insmod` into the pools of the kept
//! huge pages, probed under guard, unloaded with `rmmod`. Every `REPORT`
//! line (one per operation) must show no W+X page and no W^X alias frame.

use boot_tests::report::{addr, module};
use boot_tests::{BootOutcome, Console, QemuConfig, number_after, run_qemu, workspace_root};
use serde_json::Value;
use std::path::PathBuf;

use report::CLASS_NAMES as CLASSES;

/// A runtime test module's object.
fn object(name: &str) -> Vec<u8> {
    let p = workspace_root()
        .join("build")
        .join("runtime-modules")
        .join(format!("{name}.o"));
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make runtime-modules`)", p.display()))
}

/// Writes an initrd of `entries` for test `test`.
fn initrd(test: &str, entries: &[(&str, Vec<u8>)]) -> PathBuf {
    let list: Vec<initrd::Entry<'_>> = entries
        .iter()
        .map(|(name, data)| initrd::Entry { name, data })
        .collect();
    let bytes = initrd::build(&list).expect("valid initrd entries");
    let dir = workspace_root().join("build").join("test-initrds");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{test}.img"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A module the prelinker refuses (`make refusal-modules`).
fn refused_object(name: &str) -> Vec<u8> {
    let p = workspace_root()
        .join("build")
        .join("refusals")
        .join(format!("{name}.o"));
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make refusal-modules`)", p.display()))
}

fn objects(names: &[&str]) -> Vec<(String, Vec<u8>)> {
    names.iter().map(|n| (n.to_string(), object(n))).collect()
}

fn entries(v: &[(String, Vec<u8>)]) -> Vec<(&str, Vec<u8>)> {
    v.iter().map(|(n, d)| (n.as_str(), d.clone())).collect()
}

/// The pc preset with `initrd`. Probes get a generous time budget: these
/// tests are not about hangs, and a busy host can stall a TCG guest for
/// longer than the default 100 ms.
fn config(initrd: PathBuf, cmdline: &str) -> QemuConfig {
    QemuConfig::for_preset("pc")
        .initrd(initrd)
        .cmdline(&format!("probe_budget_ms=2000 {cmdline}"))
}

/// No W+X page and no frame writable in one mapping and executable or
/// read-only in another, in every report.
fn assert_wx(reports: &[Value]) {
    assert!(!reports.is_empty(), "no REPORT line");
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r["wx_pages"].as_u64(), Some(0), "report {i}: W+X pages");
        assert_eq!(
            r["wx_alias_frames"].as_u64(),
            Some(0),
            "report {i}: W^X alias frames"
        );
    }
}

fn used(r: &Value, class: &str) -> u64 {
    r["pools"][class]["used"]
        .as_u64()
        .unwrap_or_else(|| panic!("pools.{class}.used: {}", r["pools"]))
}

fn booted(out: &BootOutcome) -> Vec<Value> {
    out.assert_passed();
    let reports = out.reports();
    assert_wx(&reports);
    reports
}

#[test]
fn loaded_module_keeps_and_runs_its_selftest_at_its_pool_address() {
    let init = initrd("keep", &entries(&objects(&["rt_hello"])));
    let out = run_qemu(&config(init, "load=rt_hello"));
    let reports = booted(&out);
    let (boot, last) = (&reports[0], reports.last().unwrap());
    assert_eq!(reports.len(), 2, "the boot report, then one after load=");
    let m = module(last, "rt_hello");
    assert_eq!(m["result"], "kept", "{m}");
    assert_eq!(m["loaded"], "runtime");
    assert_eq!(m["selftest"], "passed");
    assert_eq!(m["depends"], serde_json::json!(["pci"]));
    // Text and rodata in their pools, which lie in the kept huge pages.
    for c in ["text", "rodata"] {
        assert_eq!(m["placed"][c]["in"], "pool", "{c}: {m}");
        let pool = &boot["regions"][c]["pool"];
        let at = addr(&m["new_addr"][c]);
        assert!(
            addr(&pool[0]) <= at && at < addr(&pool[1]),
            "{c} at {at:#x} outside the pool {pool}"
        );
        assert_eq!(at % 64, 0, "{c} placed at 64 bytes");
    }
    assert_eq!(m["placed"]["data"]["in"], "heap-tail");
    let heap = &boot["regions"]["data"]["heap"];
    let data = addr(&m["new_addr"]["data"]);
    assert!(addr(&heap[0]) <= data && data < addr(&heap[1]), "{heap}");
    // The self-test said where it ran: inside its text.
    let line = out
        .line_with("rt_hello: selftest running at")
        .unwrap_or_else(|| panic!("no selftest line: {}", out.describe()));
    let ran = number_after(line, "running at").unwrap();
    let text = addr(&m["new_addr"]["text"]);
    let len = m["used"]["text"].as_u64().unwrap();
    assert!(
        text <= ran && ran < text + len,
        "selftest at {ran:#x}, text {text:#x}+{len}"
    );
    // It called the built-in pci module's export.
    assert!(
        out.serial.contains("(through pci's export)"),
        "{}",
        out.describe()
    );
    // The pools grew by exactly its bytes (data: its 64-byte heap block).
    for c in ["text", "rodata"] {
        assert_eq!(
            used(last, c) - used(boot, c),
            m["packed"][c].as_u64().unwrap(),
            "{c} pool used grew by the packed bytes"
        );
    }
    assert_eq!(
        used(last, "data") - used(boot, "data"),
        m["placed"]["data"]["taken"].as_u64().unwrap()
    );
    // No mapping changed: the same 2 MiB pages, no 4 KiB page, no fresh page.
    for c in CLASSES {
        assert_eq!(
            last["pools"][c]["mappings"], boot["pools"][c]["mappings"],
            "{c}"
        );
        assert_eq!(last["pools"][c]["mappings"]["2m"].as_u64(), Some(1), "{c}");
        assert_eq!(last["pools"][c]["mappings"]["4k"].as_u64(), Some(0), "{c}");
        assert_eq!(last["mappings_after"][c], boot["mappings_after"][c], "{c}");
    }
    assert_eq!(last["fresh_pages"], serde_json::json!([]));
    assert_eq!(last["runtime"]["loaded"].as_u64(), Some(1));
}

/// The object of fault-injection module `name` (`make test-image`).
fn fault_object(name: &str) -> Vec<u8> {
    let p = workspace_root()
        .join("build")
        .join("fault-modules")
        .join(format!("{name}.o"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run `make test-image`)", p.display()))
}

#[test]
fn failing_module_is_released_and_its_bytes_return_to_the_pools() {
    let init = initrd(
        "fail",
        &[
            ("rt_fail", object("rt_fail")),
            ("fault_ud", fault_object("fault_ud")),
        ],
    );
    let out = run_qemu(&config(init, "load=rt_fail,fault_ud"));
    let reports = booted(&out);
    let (boot, last) = (&reports[0], reports.last().unwrap());
    let m = module(last, "rt_fail");
    assert_eq!(m["result"], "expunged", "{m}");
    assert_eq!(m["reason_kind"], "io");
    assert!(
        m["reason"].as_str().unwrap().contains("deliberate failure"),
        "{m}"
    );
    let rel = &m["released"];
    assert_eq!(rel["allocs"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["alloc_bytes"].as_u64(), Some(32768), "{rel}");
    assert_eq!(rel["ports"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["devices"].as_u64(), Some(1), "{rel}");
    for k in ["heap_bytes", "frames", "irqs"] {
        assert_eq!(m["leak"][k].as_i64(), Some(0), "leaked {k}: {}", m["leak"]);
    }
    for c in CLASSES {
        assert_eq!(used(last, c), used(boot, c), "{c} pool used back");
    }
    assert_eq!(m["bytes_returned"], true, "{m}");
    assert!(
        out.serial
            .contains("its bytes went back to the pools poisoned"),
        "{}",
        out.describe()
    );
    // A probe that faults is cut off by the guard like a built-in's. Its
    // text lies where expunged built-ins' slots were, but its own fault is
    // not taken for a stale call into them.
    let ud = module(last, "fault_ud");
    assert_eq!(ud["result"], "expunged", "{ud}");
    assert_eq!(ud["reason_kind"], "fault", "{ud}");
    let reason = ud["reason"].as_str().unwrap();
    assert!(reason.contains("invalid opcode (#UD)"), "{ud}");
    assert!(!out.serial.contains("STALE:"), "{}", out.describe());
    assert_eq!(ud["bytes_returned"], true);
}

#[test]
fn unload_returns_the_bytes_and_a_stale_call_traps_naming_it() {
    let init = initrd("unload", &entries(&objects(&["rt_hello"])));
    let mut s = Console::start(&config(init, "shell"));
    let loaded = s.command("insmod rt_hello");
    assert!(loaded.contains("insmod rt_hello: done"), "{loaded}");
    let unloaded = s.command("rmmod rt_hello");
    assert!(unloaded.contains("rmmod rt_hello: unloaded"), "{unloaded}");
    s.wait_for(boot_tests::SHELL_PROMPT);
    s.send(b"stale rt_hello\n");
    let trapped = s.wait_for("STALE:");
    let out = s.finish();
    out.assert_failed();
    let reports = out.reports();
    assert_wx(&reports);
    assert_eq!(reports.len(), 3, "boot, insmod, rmmod");
    let (boot, after_load, after) = (&reports[0], &reports[1], &reports[2]);
    let m = module(after, "rt_hello");
    assert_eq!(m["result"], "unloaded", "{m}");
    assert_eq!(m["bytes_returned"], true, "{m}");
    assert_eq!(module(after_load, "rt_hello")["bytes_returned"], false);
    assert_eq!(
        m["released"]["irqs"].as_u64(),
        Some(1),
        "IRQ handler removed"
    );
    assert_eq!(m["released"]["devices"].as_u64(), Some(1));
    assert_eq!(
        after_load["runtime"]["irq_handlers"].as_u64().unwrap(),
        boot["runtime"]["irq_handlers"].as_u64().unwrap() + 1
    );
    assert_eq!(
        after["runtime"]["irq_handlers"],
        boot["runtime"]["irq_handlers"]
    );
    for c in CLASSES {
        assert!(used(after_load, c) > used(boot, c), "{c} used while loaded");
        assert_eq!(used(after, c), used(boot, c), "{c} pool bytes returned");
    }
    // The old probe address now holds int3 poison: the call traps and the
    // report names the module.
    let probe = addr(&m["old_addr"]["text"]);
    let line = out
        .line_with("STALE:")
        .unwrap_or_else(|| panic!("no STALE line: {}", out.describe()));
    assert!(
        line.contains("address in the text of unloaded module rt_hello"),
        "{line}"
    );
    assert!(line.contains("#BP"), "{line}");
    let at = number_after(line, " at ").unwrap();
    assert!(at >= probe, "{at:#x} in its old text at {probe:#x}");
    assert!(
        trapped.contains("stale: calling the old probe address"),
        "{trapped}"
    );
    assert!(out.serial.contains("EXCEPTION: vector 3 #BP"));
}

/// The object with `e_machine` (at 18) or `e_type` (at 16) replaced.
fn patched_u16(mut obj: Vec<u8>, at: usize, v: u16) -> Vec<u8> {
    obj[at..at + 2].copy_from_slice(&v.to_le_bytes());
    obj
}

/// The object with its `depends=pci` entry renamed (to a key the loader
/// ignores): it still calls pci's export.
fn without_depends(mut obj: Vec<u8>) -> Vec<u8> {
    let needle = b"depends=pci\0";
    let at = obj
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("depends=pci in .modinfo");
    obj[at] = b'x';
    obj
}

/// The object with its recorded signature of import `symbol` renamed away
/// (`import_sig=` to `import_xig=`, the same length), as if the module
/// were built without the module API's `import_fn!`.
fn without_import_sig(mut obj: Vec<u8>, symbol: &str) -> Vec<u8> {
    let needle = format!("import_sig={symbol}:");
    let at = obj
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle} in .modinfo"));
    obj[at + "import_".len()] = b'x';
    obj
}

/// The `n`-byte little-endian field of `b` at `at`.
fn le(b: &[u8], at: usize, n: usize) -> usize {
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(&b[at..at + n]);
    u64::from_le_bytes(v) as usize
}

/// The object with its first relocation against an allocated section
/// given type 25 (R_X86_64_GOTOFF64, which the loader does not apply).
fn with_unsupported_relocation(mut obj: Vec<u8>) -> Vec<u8> {
    let (shoff, shnum) = (le(&obj, 0x28, 8), le(&obj, 0x3c, 2));
    let header = |i: usize| shoff + 64 * i;
    for i in 0..shnum {
        let h = header(i);
        let (typ, info) = (le(&obj, h + 4, 4), le(&obj, h + 44, 4));
        let target_flags = le(&obj, header(info) + 8, 8);
        if typ == 4 && target_flags & 2 != 0 && le(&obj, h + 32, 8) >= 24 {
            let entry = le(&obj, h + 24, 8);
            obj[entry + 8..entry + 12].copy_from_slice(&25u32.to_le_bytes());
            return obj;
        }
    }
    panic!("no relocation section against an allocated section");
}

/// The object with its `.modinfo` section's size running past the end of
/// the file (its section headers are intact: a damaged table, not a cut).
fn with_section_past_the_end(obj: Vec<u8>) -> Vec<u8> {
    let len = obj.len() as u64;
    with_header_field(obj, ".modinfo", 32, 8, len)
}

/// The file offset of symbol `name`'s entry in the symbol table (found
/// through the symbol table's string table).
fn symbol_entry(obj: &[u8], name: &str) -> usize {
    let (shoff, shnum) = (le(obj, 0x28, 8), le(obj, 0x3c, 2));
    for i in 0..shnum {
        let h = shoff + 64 * i;
        if le(obj, h + 4, 4) != 2 {
            continue;
        }
        let (off, size) = (le(obj, h + 24, 8), le(obj, h + 32, 8));
        let strtab = le(obj, shoff + 64 * le(obj, h + 40, 4) + 24, 8);
        for e in (off..off + size).step_by(24) {
            let n = strtab + le(obj, e, 4);
            if obj[n..].starts_with(name.as_bytes()) && obj[n + name.len()] == 0 {
                return e;
            }
        }
    }
    panic!("no symbol {name}");
}

/// The object with symbol `name`'s value set to `value`.
fn with_symbol_value(mut obj: Vec<u8>, name: &str, value: u64) -> Vec<u8> {
    let e = symbol_entry(&obj, name);
    obj[e + 8..e + 16].copy_from_slice(&value.to_le_bytes());
    obj
}

/// The object with symbol `name`'s type (`st_info` low bits) set to `t`.
fn with_symbol_type(mut obj: Vec<u8>, name: &str, t: u8) -> Vec<u8> {
    let e = symbol_entry(&obj, name);
    obj[e + 4] = (obj[e + 4] & 0xf0) | t;
    obj
}

/// The object with symbol `name`'s section index set to `shndx`.
fn with_symbol_shndx(mut obj: Vec<u8>, name: &str, shndx: u16) -> Vec<u8> {
    let e = symbol_entry(&obj, name);
    obj[e + 6..e + 8].copy_from_slice(&shndx.to_le_bytes());
    obj
}

/// The file offset of the header of the section called `name`, and of
/// every section's header by index (`None`: the name was not found).
fn section_header(obj: &[u8], name: &str) -> (Option<usize>, impl Fn(usize) -> usize + use<>) {
    let (shoff, shnum, shstrndx) = (le(obj, 0x28, 8), le(obj, 0x3c, 2), le(obj, 0x3e, 2));
    let names = le(obj, shoff + 64 * shstrndx + 24, 8);
    let found = (0..shnum).map(|i| shoff + 64 * i).find(|&h| {
        let n = names + le(obj, h, 4);
        obj[n..].starts_with(name.as_bytes()) && obj[n + name.len()] == 0
    });
    (found, move |i| shoff + 64 * i)
}

/// The object with section `name`'s header field at `field` (a byte offset
/// inside the header) set to `v`, `width` bytes wide; section index `0`
/// when `name` is empty.
fn with_header_field(mut obj: Vec<u8>, name: &str, field: usize, width: usize, v: u64) -> Vec<u8> {
    let (found, header) = section_header(&obj, name);
    let h = if name.is_empty() {
        header(0)
    } else {
        found.unwrap_or_else(|| panic!("no section {name}"))
    };
    obj[h + field..h + field + width].copy_from_slice(&v.to_le_bytes()[..width]);
    obj
}

/// The object with its `.modinfo` entry that starts with `prefix`
/// replaced by `entries` (NUL-separated), padded with an unknown entry to
/// the same length.
fn with_modinfo_entries(mut obj: Vec<u8>, prefix: &str, entries: &str) -> Vec<u8> {
    let at = obj
        .windows(prefix.len())
        .position(|w| w == prefix.as_bytes())
        .unwrap_or_else(|| panic!("no .modinfo entry {prefix}"));
    let len = obj[at..].iter().position(|&b| b == 0).unwrap();
    let mut new = format!("{entries}\0z=");
    assert!(new.len() <= len, "{entries} does not fit in {len} bytes");
    new.extend(std::iter::repeat_n('z', len - new.len()));
    obj[at..at + len].copy_from_slice(new.as_bytes());
    obj
}

#[test]
fn bad_objects_are_refused_with_named_errors() {
    let hello = object("rt_hello");
    let list = [
        ("rt_trunc", hello[..hello.len() * 3 / 5].to_vec()),
        ("rt_longsec", with_section_past_the_end(hello.clone())),
        ("rt_badmach", patched_u16(hello.clone(), 18, 3)),
        ("rt_exec", patched_u16(hello.clone(), 16, 2)),
        ("rt_badrel", with_unsupported_relocation(hello.clone())),
        ("rt_undef", object("rt_undef")),
        ("rt_nodeps", without_depends(hello.clone())),
        ("rt_user", object("rt_user")),
        ("junk", b"not an object at all".to_vec()),
        ("wrong_signature", refused_object("wrong_signature")),
        (
            "no_signature",
            without_import_sig(hello.clone(), "kapi_log"),
        ),
        (
            "rt_farprobe",
            with_symbol_value(hello.clone(), "__module_probe", 0x4_0000_0000),
        ),
        // Section header 0 made a relocation table (the kernel panicked).
        ("rt_sec0", with_header_field(hello.clone(), "", 4, 4, 4)),
        // The probe's relocations said to apply to .comment: dropped, and
        // the probe ran unrelocated.
        ("rt_relainfo", {
            let (comment, _) = section_header(&hello, ".comment");
            let (_, header) = section_header(&hello, "");
            let index = (0..).find(|&i| Some(header(i)) == comment).unwrap() as u64;
            with_header_field(hello.clone(), ".rela.text.__module_probe", 44, 4, index)
        }),
        // The probe's section made SHT_NULL: placed as int3 and run.
        (
            "rt_nulltext",
            with_header_field(hello.clone(), ".text.__module_probe", 4, 4, 0),
        ),
        (
            "rt_ifunc",
            with_symbol_type(hello.clone(), "__module_probe", 10),
        ),
        (
            "rt_common",
            with_symbol_shndx(hello.clone(), "rt_hello_version", 0xfff2),
        ),
        (
            "rt_twoabi",
            with_modinfo_entries(hello.clone(), "import_sig=kapi_log:", "abi=+2"),
        ),
        // sh_info one past its value: the first global counted as local.
        ("rt_syminfo", {
            let (symtab, _) = section_header(&hello, ".symtab");
            let info = le(&hello, symtab.expect(".symtab") + 44, 4) as u64;
            with_header_field(hello.clone(), ".symtab", 44, 4, info + 1)
        }),
    ];
    // The object's own section count (e_shnum), which the error names.
    let shnum = u16::from_le_bytes([hello[60], hello[61]]);
    let trunc_text = format!("rt_trunc: truncated: the {shnum} section headers at offset");
    let init = initrd("refuse", &list);
    let names: Vec<&str> = list.iter().map(|e| e.0).collect();
    let out = run_qemu(&config(init, &format!("load={},absent", names.join(","))));
    let reports = booted(&out);
    let (boot, last) = (&reports[0], reports.last().unwrap());
    let refusals = last["refusals"].as_array().unwrap();
    let refusal = |object: &str| {
        refusals
            .iter()
            .find(|r| r["object"] == object)
            .unwrap_or_else(|| panic!("{object} not refused: {refusals:?}"))
    };
    let cases = [
        ("rt_trunc", "truncated", trunc_text.as_str()),
        ("rt_longsec", "truncated", "rt_longsec: truncated: section "),
        (
            "rt_badmach",
            "wrong-machine",
            "rt_badmach: wrong machine: ELF for i386 (EM_386), expected x86_64",
        ),
        (
            "rt_exec",
            "not-relocatable",
            "rt_exec: not relocatable: an executable (ET_EXEC)",
        ),
        (
            "rt_badrel",
            "unsupported-relocation",
            "rt_badrel: unsupported relocation R_X86_64_GOTOFF64 in section ",
        ),
        (
            "rt_undef",
            "undefined-symbol",
            "rt_undef: undefined symbol `rt_missing_symbol`",
        ),
        (
            "rt_user",
            "missing-dependency",
            "rt_user: module rt_user depends on rt_hello, which is not loaded",
        ),
        (
            "rt_nodeps",
            "undeclared-dependency",
            "rt_nodeps: uses symbol `pci_find_class` of module pci without declaring depends=pci",
        ),
        ("junk", "not-elf", "junk: not an ELF file"),
        (
            "wrong_signature",
            "signature-mismatch",
            "wrong_signature: imports `pci_find_device` as `fn(u16, u16, u16, &mut PciDevice) -> bool`, but module pci exports it with signature hash",
        ),
        (
            "no_signature",
            "signature-mismatch",
            "no_signature: imports `kapi_log` as (no signature recorded), but the kernel exports `fn(",
        ),
        (
            "rt_farprobe",
            "malformed",
            "rt_farprobe: malformed: symbol `__module_probe` has value 0x400000000, past the end of its section .text.__module_probe (",
        ),
        (
            "rt_sec0",
            "malformed",
            "rt_sec0: malformed: section header 0 is not the null section (Rela)",
        ),
        (
            "rt_relainfo",
            "malformed",
            "rt_relainfo: malformed: relocation section .rela.text.__module_probe applies to section 109 (.comment), not .text.__module_probe",
        ),
        (
            "rt_nulltext",
            "unsupported",
            "rt_nulltext: unsupported: section .text.__module_probe is allocated but of type Null",
        ),
        (
            "rt_ifunc",
            "unsupported",
            "rt_ifunc: unsupported: symbol `__module_probe` is an indirect function (STT_GNU_IFUNC)",
        ),
        (
            "rt_common",
            "unsupported",
            "rt_common: unsupported: symbol `rt_hello_version` is COMMON (build with -fno-common)",
        ),
        (
            "rt_twoabi",
            "modinfo",
            "rt_twoabi: .modinfo has more than one abi= entry",
        ),
        (
            "rt_syminfo",
            "malformed",
            "is not local, but the symbol table's sh_info (",
        ),
        (
            "absent",
            "not-in-initrd",
            "no object `absent` in the initrd (it has: rt_trunc, ",
        ),
    ];
    for (object, kind, text) in cases {
        let r = refusal(object);
        assert_eq!(r["kind"], kind, "{r}");
        let e = r["error"].as_str().unwrap();
        assert!(e.contains(text), "{object}: {e:?} lacks {text:?}");
        assert!(
            out.serial
                .contains(&format!("insmod {object}: refused: {e}")),
            "{object}: the console says so too"
        );
    }
    assert_eq!(refusals.len(), cases.len());
    // Nothing was taken by any of them.
    for c in CLASSES {
        assert_eq!(used(last, c), used(boot, c), "{c}");
    }
    assert_eq!(last["runtime"]["loaded"].as_u64(), Some(0));
}

#[test]
fn a_full_pool_takes_a_fresh_huge_page() {
    let init = initrd("fresh", &entries(&objects(&["rt_big", "rt_hello"])));
    let out = run_qemu(&config(init, "load=rt_big,rt_hello"));
    let reports = booted(&out);
    let (boot, last) = (&reports[0], reports.last().unwrap());
    let big = module(last, "rt_big");
    assert_eq!(big["result"], "kept", "{big}");
    assert_eq!(big["selftest"], "passed");
    let rodata = big["used"]["rodata"].as_u64().unwrap();
    assert!(
        rodata > boot["pools"]["rodata"]["free"].as_u64().unwrap(),
        "rt_big's rodata must not fit the rodata pool"
    );
    assert_eq!(big["placed"]["rodata"]["in"], "fresh", "{big}");
    assert_eq!(big["placed"]["text"]["in"], "pool", "{big}");
    let fresh = last["fresh_pages"].as_array().unwrap();
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert_eq!(fresh[0]["class"], "rodata");
    assert_eq!(fresh[0]["flags"], "R");
    assert_eq!(fresh[0]["size"].as_u64(), Some(2 << 20));
    assert_eq!(addr(&fresh[0]["addr"]), addr(&big["new_addr"]["rodata"]));
    assert!(
        out.serial
            .contains("loader: rodata pool full: took a fresh 2 MiB page at"),
        "{}",
        out.describe()
    );
    // One more 2 MiB mapping for rodata, none for the others, no 4 KiB page.
    assert_eq!(last["pools"]["rodata"]["mappings"]["2m"].as_u64(), Some(2));
    assert_eq!(last["pools"]["rodata"]["fresh_pages"].as_u64(), Some(1));
    for c in CLASSES {
        assert_eq!(last["pools"][c]["mappings"]["4k"].as_u64(), Some(0), "{c}");
    }
    for c in ["text", "data"] {
        assert_eq!(last["pools"][c]["mappings"], boot["pools"][c]["mappings"]);
    }
    // The next module's small rodata still goes to the old pool.
    let hello = module(last, "rt_hello");
    assert_eq!(hello["placed"]["rodata"]["in"], "pool", "{hello}");
}

/// The runtime loader's free-frame count in report `r`.
fn free_frames(r: &Value) -> u64 {
    r["runtime"]["free_frames"]
        .as_u64()
        .unwrap_or_else(|| panic!("runtime.free_frames: {}", r["runtime"]))
}

/// Boots with `init` into the shell, runs each command of `steps` and
/// checks its output holds the text paired with it, then leaves with
/// `exit`: the boot's outcome.
fn shell_session(init: PathBuf, steps: &[(&str, &str)]) -> BootOutcome {
    shell_session_with(config(init, "shell"), steps)
}

/// [`shell_session`] on the machine `cfg`.
fn shell_session_with(cfg: QemuConfig, steps: &[(&str, &str)]) -> BootOutcome {
    let mut s = Console::start(&cfg);
    for (cmd, want) in steps {
        let o = s.command(cmd);
        assert!(o.contains(want), "{cmd}: expected {want:?} in {o}");
    }
    s.wait_for(boot_tests::SHELL_PROMPT);
    s.send(b"exit\n");
    s.finish()
}

#[test]
fn a_load_refused_after_placing_gives_its_fresh_page_back() {
    // rt_big's rodata takes a fresh page; its damaged relocation is found
    // only when it is linked, after placing.
    let big = with_unsupported_relocation(object("rt_big"));
    let init = initrd(
        "fresh-refused",
        &[("rt_hello", object("rt_hello")), ("rt_big", big)],
    );
    let out = shell_session(
        init,
        &[
            ("insmod rt_hello", "insmod rt_hello: done"),
            ("insmod rt_big", "insmod rt_big: refused"),
        ],
    );
    let reports = booted(&out);
    assert_eq!(reports.len(), 3, "boot, rt_hello, rt_big");
    let (before, after) = (&reports[1], &reports[2]);
    let refusals = after["refusals"].as_array().unwrap();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(
        refusals[0]["kind"], "unsupported-relocation",
        "{refusals:?}"
    );
    for line in [
        "loader: rodata pool full: took a fresh 2 MiB page at",
        "loader: rodata no longer used: gave back the fresh 2 MiB page at",
    ] {
        assert!(out.serial.contains(line), "{line}: {}", out.describe());
    }
    // Nothing of the refused load is left: no fresh page, the pools and
    // mappings as before it, and every frame back (its 512, and the page
    // tables that mapped them).
    assert_eq!(after["fresh_pages"], serde_json::json!([]));
    assert_eq!(free_frames(after), free_frames(before));
    for c in CLASSES {
        assert_eq!(after["pools"][c], before["pools"][c], "{c}");
    }
}

#[test]
fn unloading_the_last_user_of_a_fresh_page_gives_it_back() {
    let init = initrd("fresh-rmmod", &entries(&objects(&["rt_hello", "rt_big"])));
    // Loaded again after rmmod, rt_big gets a fresh page again, at the
    // same address.
    let out = shell_session(
        init,
        &[
            ("insmod rt_hello", "insmod rt_hello: done"),
            ("insmod rt_big", "insmod rt_big: done"),
            ("rmmod rt_big", "rmmod rt_big: unloaded"),
            ("insmod rt_big", "insmod rt_big: done"),
        ],
    );
    let reports = booted(&out);
    assert_eq!(reports.len(), 5, "boot, two insmods, rmmod, insmod");
    let (before, loaded, after) = (&reports[1], &reports[2], &reports[3]);
    assert_eq!(reports[4]["fresh_pages"], loaded["fresh_pages"]);
    assert_eq!(module(&reports[4], "rt_big")["selftest"], "passed");
    assert_eq!(loaded["fresh_pages"].as_array().unwrap().len(), 1);
    assert!(
        free_frames(loaded) + 512 <= free_frames(before),
        "the fresh page's 512 frames come from the frame allocator"
    );
    assert_eq!(after["fresh_pages"], serde_json::json!([]));
    assert_eq!(free_frames(after), free_frames(before));
    for c in CLASSES {
        assert_eq!(after["pools"][c], before["pools"][c], "{c}");
    }
    assert!(
        out.serial
            .contains("loader: rodata no longer used: gave back the fresh 2 MiB page at"),
        "{}",
        out.describe()
    );
}

/// Module record `m` has one runtime fault: its callback `place`, on CPU
/// `cpu`, hung and cut off by the NMI watchdog.
fn assert_cut_off_once(m: &Value, place: &str, cpu: u64) {
    let faults = m["runtime_faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["where"], place, "{faults:?}");
    assert_eq!(faults[0]["kind"], "hung", "{faults:?}");
    assert_eq!(faults[0]["cpu"], cpu, "{faults:?}");
    assert!(
        faults[0]["reason"]
            .as_str()
            .is_some_and(|m| m.contains("cut off by the NMI watchdog")),
        "{faults:?}"
    );
}

#[test]
fn a_console_write_cut_off_falls_back_to_com1_without_splitting_a_line() {
    let init = initrd("console", &entries(&objects(&["rt_console"])));
    // rt_console becomes the console; its 41st write, inside the REPORT
    // line this insmod prints, spins for ever in its own code with
    // interrupts off: only the NMI watchdog can stop it.
    let out = shell_session(
        init,
        &[
            ("rmmod uart_com1", "rmmod uart_com1: unloaded"),
            ("insmod rt_console", "insmod rt_console: done"),
            ("report", "REPORT "),
        ],
    );
    // Every REPORT line is whole JSON (`reports` parses each one): boot,
    // rmmod, insmod (the one cut off and finished on COM1), report.
    let reports = booted(&out);
    assert_eq!(reports.len(), 4, "{}", out.describe());
    let cut = "module rt_console: console write: ";
    let line = out
        .line_with(cut)
        .unwrap_or_else(|| panic!("no line about the cut write: {}", out.describe()));
    assert!(
        line.contains("console back on COM1") && !line.contains("REPORT"),
        "{line}"
    );
    assert!(
        line.trim_end().ends_with("console back on COM1"),
        "nothing may follow on the line: {line}"
    );
    let m = module(&reports[3], "rt_console");
    assert_eq!(m["result"], "kept", "{m}");
    assert_cut_off_once(m, "console write", 0);
    // The write was cut off while the insmod's REPORT line went out.
    assert_eq!(reports[2]["watchdog"]["cut_off"], 0, "{}", reports[2]);
    assert_eq!(reports[3]["watchdog"]["cut_off"], 1, "{}", reports[3]);
    // A kept module's callback that faulted degrades the boot.
    assert_eq!(reports[3]["health"], "degraded");
    assert_eq!(reports[3]["degraded"], serde_json::json!(["rt_console"]));
}

/// An IRQ handler that polls a register for ever runs with interrupts
/// off: the NMI watchdog cuts it off, its probe fails with that reason,
/// the line is freed and the kernel goes on.
#[test]
fn an_irq_handler_spinning_with_interrupts_off_is_cut_off_by_the_nmi_watchdog() {
    let init = initrd("irq-spin", &entries(&objects(&["rt_irq_spin", "rt_hello"])));
    let out = shell_session(
        init,
        &[
            ("insmod rt_irq_spin", "module rt_irq_spin: expunged"),
            ("insmod rt_hello", "insmod rt_hello: done"),
        ],
    );
    let reports = booted(&out);
    assert_eq!(reports.len(), 3, "boot, rt_irq_spin, rt_hello");
    assert_eq!(reports[0]["watchdog"]["cut_off"], 0, "{}", reports[0]);
    let m = module(&reports[1], "rt_irq_spin");
    assert_eq!(m["result"], "expunged", "{m}");
    assert_eq!(m["reason_kind"], "hung", "{m}");
    let reason = m["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("IRQ 6 handler: hung: still running after 200 ms")
            && reason.contains("cut off by the NMI watchdog"),
        "{reason}"
    );
    // The cut-off took its handler away; the release that followed had
    // none left to remove, and no handler is left behind.
    assert_eq!(m["released"]["irqs"], 0, "{m}");
    assert_eq!(m["leak"]["irqs"], 0, "{m}");
    assert_eq!(
        reports[1]["runtime"]["irq_handlers"], reports[0]["runtime"]["irq_handlers"],
        "{}",
        reports[1]
    );
    assert_eq!(reports[1]["watchdog"]["cut_off"], 1, "{}", out.describe());

    assert_eq!(module(&reports[2], "rt_hello")["result"], "kept");
}

/// A handler spinning on a CPU past the eighth, which the watchdog's NMI
/// reaches only through CPU 0's forwarding: `irq 5 9` runs rt_irq_wait's
/// handler on CPU 9 (once it returns, then it spins with interrupts off),
/// and the watchdog cuts it off there.
#[test]
fn a_handler_spinning_on_cpu_9_is_cut_off_through_forwarded_nmis() {
    let init = initrd("irq-wait", &entries(&objects(&["rt_irq_wait"])));
    let out = shell_session_with(
        config(init, "shell").smp(10),
        &[
            ("insmod rt_irq_wait", "insmod rt_irq_wait: done"),
            ("report", "REPORT "),
            (
                "irq 5 9",
                "irq 5: rt_irq_wait's handler ran on CPU 9 and returned",
            ),
            ("irq 5 12", "error: irq 5 on CPU 12: CPU 12 is not online"),
            (
                "irq 5 9",
                "irq 5: rt_irq_wait's handler on CPU 9 was cut short (see the log); IRQ 5 disabled",
            ),
            (
                "irq 5 9",
                "error: irq 5 on CPU 9: no module handler on IRQ 5",
            ),
            ("report", "REPORT "),
            // The cut-off removed the handler: unloading releases none.
            (
                "rmmod rt_irq_wait",
                "rmmod rt_irq_wait: unloaded (0 IRQ handlers,",
            ),
        ],
    );
    let reports = booted(&out);
    let n = reports.len();
    let (before, after) = (&reports[n - 3], &reports[n - 2]);
    let unloaded = module(&reports[n - 1], "rt_irq_wait");
    assert_eq!(unloaded["result"], "unloaded", "{unloaded}");
    assert_eq!(unloaded["released"]["irqs"], 0, "{unloaded}");
    assert_eq!(
        reports[n - 1]["runtime"]["irq_handlers"],
        reports[0]["runtime"]["irq_handlers"],
        "{}",
        reports[n - 1]
    );
    let line = out
        .line_with("module rt_irq_wait: IRQ 5 handler on CPU 9: ")
        .unwrap_or_else(|| panic!("no cut-off line: {}", out.describe()));
    assert!(
        line.contains("hung: still running after 200 ms")
            && line.contains("cut off by the NMI watchdog")
            && line.trim_end().ends_with("; IRQ 5 disabled"),
        "{line}"
    );
    let m = module(after, "rt_irq_wait");
    assert_eq!(m["result"], "kept", "{m}");
    assert_cut_off_once(m, "IRQ 5 handler", 9);
    let w = (&before["watchdog"], &after["watchdog"]);
    assert_eq!(w.0["cut_off"], 0, "{}", w.0);
    assert_eq!(w.1["cut_off"], 1, "{}", w.1);
    assert_eq!(w.1["forwarded"], serde_json::json!([8, 9]), "{}", w.1);
    assert_eq!(w.1["forward_failures"], 0, "{}", w.1);
    // CPU 9 took the NMIs that stopped it while the handler spun there.
    let nmis = |w: &Value| w["nmis"]["9"].as_u64().expect("CPU 9's NMI count");
    assert!(nmis(w.1) > nmis(w.0), "{} then {}", w.0, w.1);
    assert_eq!(after["health"], "degraded");
}

/// A real interrupt that arrives while the handler runs on another CPU:
/// `irq 6 1` runs rt_irq_overlap's handler on CPU 1, whose run makes the
/// floppy controller raise IRQ 6 (delivered to CPU 0) and stays busy for
/// 5 ms. CPU 0 must not run the handler beside it; CPU 1 runs it once more
/// when it returns. When the host is too slow for the interrupt to reach
/// CPU 0 within those 5 ms, CPU 0 runs it afterwards, which proves
/// nothing, and the test tries again (at most five times).
#[test]
fn an_interrupt_during_an_injected_run_is_run_after_it_on_the_same_cpu() {
    let init = initrd("irq-overlap", &entries(&objects(&["rt_irq_overlap"])));
    let mut s = Console::start(&config(init, "shell"));
    let loaded = s.command("insmod rt_irq_overlap");
    assert!(loaded.contains("insmod rt_irq_overlap: done"), "{loaded}");
    let mut tries = Vec::new();
    for _ in 0..5 {
        let o = s.command("irq 6 1");
        let twice = o.contains(
            "irq 6: rt_irq_overlap's handler ran on CPU 1 and returned; it ran 2 times there",
        );
        assert!(
            twice || o.contains("irq 6: rt_irq_overlap's handler ran on CPU 1 and returned"),
            "{o}"
        );
        tries.push(o);
        if twice {
            break;
        }
        // Let CPU 0 take the late interrupt before the next try.
        s.command("report");
    }
    s.wait_for(boot_tests::SHELL_PROMPT);
    s.send(b"exit\n");
    let out = s.finish();
    booted(&out);
    assert!(
        tries
            .last()
            .is_some_and(|o| o.contains("it ran 2 times there")),
        "no try ran the handler twice on CPU 1: {tries:?}"
    );
    let runs: Vec<&str> = out
        .serial
        .lines()
        .filter_map(|l| l.trim_end().split_once("rt_irq_overlap: run "))
        .map(|(_, run)| run)
        .collect();
    // Two runs per try, none begun while another had not ended (that line
    // would read "N began while another run had not ended").
    let want: Vec<String> = (1..=2 * tries.len()).map(|n| n.to_string()).collect();
    assert_eq!(runs, want, "{}", out.describe());
}

/// Without the NMI watchdog a handler that never returned would hang the
/// shell for good, so `irq` refuses, saying why.
#[test]
fn irq_is_refused_without_the_nmi_watchdog() {
    let init = initrd("irq-nowatchdog", &entries(&objects(&["rt_irq_wait"])));
    let out = shell_session_with(
        config(init, "shell nmi_watchdog=0"),
        &[
            ("insmod rt_irq_wait", "insmod rt_irq_wait: done"),
            (
                "irq 5 0",
                "error: irq 5 on CPU 0: the NMI watchdog is not armed (nmi_watchdog=0 on the command line): a handler that never returned would hang the shell",
            ),
        ],
    );
    let reports = booted(&out);
    let m = module(reports.last().unwrap(), "rt_irq_wait");
    assert_eq!(m["runtime_faults"], serde_json::json!([]), "{m}");
}

#[test]
fn without_an_initrd_insmod_says_so() {
    let mut s = Console::start(&QemuConfig::for_preset("pc").cmdline("load=rt_hello shell"));
    let out = s.command("insmod rt_hello");
    assert!(
        out.contains("error: insmod rt_hello: no initrd: boot with -initrd"),
        "{out}"
    );
    s.wait_for(boot_tests::SHELL_PROMPT);
    s.send(b"exit\n");
    let out = s.finish();
    out.assert_passed();
    let reports = out.reports();
    assert_wx(&reports);
    let refusals = reports.last().unwrap()["refusals"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(refusals.len(), 2, "load= and insmod: {refusals:?}");
    assert!(
        refusals.iter().all(|r| r["kind"] == "initrd"),
        "{refusals:?}"
    );
}

/// The shell, driven through COM1: every command, bad input, line editing.
#[test]
fn the_shell_runs_every_command() {
    let init = initrd(
        "shell",
        &entries(&objects(&["rt_hello", "rt_user", "rt_fail"])),
    );
    let mut s = Console::start(&config(init, "shell"));
    s.wait_for("input through COM1's receive interrupt (IRQ 4)");
    let help = s.command("help");
    for cmd in [
        "help",
        "lsmod",
        "report",
        "maps",
        "pools",
        "free",
        "initrd",
        "insmod NAME",
        "rmmod NAME",
        "exit",
    ] {
        assert!(
            help.contains(&format!("  {cmd} ")),
            "help lacks {cmd}: {help}"
        );
    }
    let lsmod = s.command("lsmod");
    assert!(
        lsmod
            .lines()
            .any(|l| l.starts_with("pci ") && l.contains("builtin")),
        "{lsmod}"
    );
    assert!(!lsmod.contains("rt_hello"), "{lsmod}");
    let listed = s.command("initrd");
    for o in ["rt_hello", "rt_user", "rt_fail"] {
        assert!(listed.contains(o), "{listed}");
    }
    let pools0 = s.command("pools");
    for c in CLASSES {
        assert!(
            pools0.lines().any(|l| l.starts_with(c)),
            "pools lacks {c}: {pools0}"
        );
    }
    let ins = s.command("insmod rt_hello");
    assert!(ins.contains("insmod rt_hello: done"), "{ins}");
    assert!(
        ins.contains("\nREPORT {"),
        "a REPORT line after insmod: {ins}"
    );
    let ins = s.command("insmod rt_user");
    assert!(
        ins.contains("rt_user: rt_hello_version() = 0x10203"),
        "{ins}"
    );
    let failed = s.command("insmod rt_fail");
    assert!(failed.contains("module rt_fail: expunged"), "{failed}");
    let lsmod = s.command("lsmod");
    let row = lsmod
        .lines()
        .find(|l| l.starts_with("rt_hello "))
        .unwrap_or_else(|| panic!("{lsmod}"));
    assert!(row.contains("loaded") && row.ends_with("rt_user"), "{row}");
    assert!(
        !lsmod.contains("rt_fail"),
        "expunged modules are not listed: {lsmod}"
    );
    let refused = s.command("rmmod rt_hello");
    assert!(
        refused.contains("error: rmmod rt_hello: module rt_hello is in use by rt_user"),
        "{refused}"
    );
    let maps = s.command("maps");
    for c in CLASSES {
        assert!(
            maps.contains(&format!("{c:<7} total: 0 x 4K, 1 x 2M")),
            "{maps}"
        );
    }
    assert!(maps.contains("W+X pages 0, W^X alias frames 0"), "{maps}");
    let free = s.command("free");
    assert!(
        free.contains("frames: ") && free.contains("heap: "),
        "{free}"
    );
    let report = s.command("report");
    assert!(report.contains("Reclaimed-memory report"), "{report}");
    assert!(report.contains("rt_user "), "{report}");
    // Bad input: one error line each, and the shell goes on.
    for (line, error) in [
        ("bogus", "error: unknown command `bogus` (type `help`)"),
        ("insmod", "error: usage: insmod NAME"),
        ("insmod a b", "error: usage: insmod NAME"),
        ("insmod ../x", "error: insmod: bad name `../x`"),
        (
            "insmod nosuch",
            "error: insmod nosuch: no object `nosuch` in the initrd",
        ),
        (
            "rmmod nosuch",
            "error: rmmod nosuch: no loaded module nosuch",
        ),
        ("lsmod extra", "error: usage: lsmod"),
        ("irq 6", "error: usage: irq LINE CPU"),
        ("irq x 0", "error: irq: LINE `x` is not a number (0-15)"),
        ("irq 4 +", "error: irq: CPU `+` is not a number"),
        (
            "irq 16 0",
            "error: irq 16 on CPU 0: no IRQ line 16 (lines are 0-15)",
        ),
        (
            "irq 256 0",
            "error: irq 256 on CPU 0: no IRQ line 256 (lines are 0-15)",
        ),
        ("irq 4 12", "error: irq 4 on CPU 12: CPU 12 is not online"),
        // COM1's line is the kernel's, not a module's.
        (
            "irq 4 0",
            "error: irq 4 on CPU 0: no module handler on IRQ 4",
        ),
        (
            "insmod rt_user",
            "error: insmod rt_user: rt_user: module rt_user is loaded already",
        ),
    ] {
        let out = s.command(line);
        let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{line}: {out}");
        assert!(errors[0].starts_with(error), "{line}: {out}");
    }
    // Line editing: Backspace, Ctrl-U, an arrow key's escape sequence.
    let edited = s.command("lsmx\x7fod");
    assert!(edited.contains("origin"), "edited to lsmod: {edited}");
    let killed = s.command("garbage\x15pools");
    assert!(killed.contains("largest"), "Ctrl-U then pools: {killed}");
    let arrow = s.command("\x1b[Ahelp");
    assert!(arrow.contains("list the commands"), "{arrow}");
    let out = s.command("rmmod rt_user");
    assert!(out.contains("rmmod rt_user: unloaded"), "{out}");
    let out = s.command("rmmod rt_hello");
    assert!(
        out.contains("rmmod rt_hello: unloaded (1 IRQ handlers"),
        "{out}"
    );
    let pools = s.command("pools");
    assert_eq!(
        pools0.lines().find(|l| l.starts_with("text")),
        pools.lines().find(|l| l.starts_with("text")),
        "text pool as at boot"
    );
    s.wait_for(boot_tests::SHELL_PROMPT);
    s.send(b"exit\r\n");
    let out = s.finish();
    out.assert_passed();
    let reports = out.reports();
    assert_wx(&reports);
    // One at boot, one per insmod (5, two of them refused) and rmmod (4,
    // two refused), one for the report command.
    assert_eq!(reports.len(), 1 + 5 + 4 + 1, "{}", reports.len());
    let line = out
        .line_with("shell: exit:")
        .unwrap_or_else(|| panic!("{}", out.describe()));
    let irqs = number_after(line, "bytes received in").unwrap();
    assert!(irqs > 0, "input came through the receive interrupt: {line}");
    let last = reports.last().unwrap();
    for c in CLASSES {
        assert_eq!(used(last, c), used(&reports[0], c), "{c} back to boot");
    }
}

/// The runtime loader's costs (a small benchmark; `make bench-runtime`
/// prints it): 50 copies of a small module, each under its own name, are
/// loaded with `load=`. Times are TSC readings inside QEMU's TCG emulator,
/// not hardware times.
#[test]
fn runtime_bench_50_small_modules() {
    let obj = object("rt_bench_00");
    let needle = b"name=rt_bench_00\0";
    let at = obj
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("rt_bench_00's .modinfo name")
        + needle.len()
        - 3;
    let copies: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| {
            let mut o = obj.clone();
            o[at..at + 2].copy_from_slice(format!("{i:02}").as_bytes());
            (format!("rt_bench_{i:02}"), o)
        })
        .collect();
    let init = initrd("bench", &entries(&copies));
    let names: Vec<&str> = copies.iter().map(|c| c.0.as_str()).collect();
    let out = run_qemu(&config(init, &format!("load={}", names.join(","))));
    let reports = booted(&out);
    let (boot, last) = (&reports[0], reports.last().unwrap());
    let loaded: Vec<&Value> = names.iter().map(|n| module(last, n)).collect();
    let mut load_us: Vec<f64> = Vec::new();
    let mut probe_us: Vec<f64> = Vec::new();
    let (mut bytes, mut page_rounded, mut pages) = ([0u64; 3], [0u64; 3], 0u64);
    for m in &loaded {
        assert_eq!(m["result"], "kept", "{m}");
        load_us.push(m["load_ns"].as_u64().unwrap() as f64 / 1000.0);
        probe_us.push(m["probe_ns"].as_u64().unwrap() as f64 / 1000.0);
        for (i, c) in CLASSES.iter().enumerate() {
            let b = m["used"][c].as_u64().unwrap();
            bytes[i] += b;
            page_rounded[i] += b.div_ceil(4096) * 4096;
            pages += b.div_ceil(4096);
        }
    }
    load_us.sort_by(f64::total_cmp);
    probe_us.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v[v.len() / 2];
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let text_used = used(last, "text") - used(boot, "text");
    let maps = |r: &Value, k: &str| -> u64 {
        CLASSES
            .iter()
            .map(|c| r["pools"][c]["mappings"][k].as_u64().unwrap())
            .sum()
    };
    println!("runtime loader, 50 small modules (emulator time: QEMU TCG, not hardware)");
    println!(
        "  load (parse, place, relocate, write) per module: median {:.0} us, mean {:.0} us, max {:.0} us",
        median(&load_us),
        mean(&load_us),
        load_us.last().unwrap()
    );
    println!(
        "  probe per module: median {:.0} us, mean {:.0} us",
        median(&probe_us),
        mean(&probe_us)
    );
    println!(
        "  text bytes: {} packed at 64 B in the text pool (pool used grew by {text_used}); page-rounded, Linux-style: {}",
        bytes[0], page_rounded[0]
    );
    println!(
        "  all classes: {} bytes packed, {} page-rounded ({} 4 KiB pages, so as many 4 KiB mappings)",
        bytes.iter().sum::<u64>(),
        page_rounded.iter().sum::<u64>(),
        pages
    );
    println!(
        "  mappings over the class ranges: {} x 2M + {} x 4K before, {} x 2M + {} x 4K after; fresh pages {}",
        maps(boot, "2m"),
        maps(boot, "4k"),
        maps(last, "2m"),
        maps(last, "4k"),
        last["fresh_pages"].as_array().unwrap().len()
    );
    assert_eq!(
        text_used, bytes[0],
        "text pool used grew by the packed bytes"
    );
    assert_eq!(maps(last, "2m"), maps(boot, "2m"), "no new 2 MiB mapping");
    assert_eq!(maps(last, "4k"), 0, "no 4 KiB mapping");
    assert!(
        page_rounded[0] > bytes[0],
        "page rounding takes more text bytes"
    );
    let (packed, rounded) = (bytes.iter().sum::<u64>(), page_rounded.iter().sum::<u64>());
    assert!(
        rounded > 2 * packed,
        "{rounded} page-rounded vs {packed} packed"
    );
}
