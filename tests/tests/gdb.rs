//! Debugging modules where they are probed and at their final addresses
//! (`make gdb`, `kernel/gdb/plk.py`):
//! QEMU's gdb stub and gdb in batch mode, once with an image whose
//! expectation holds (nothing moves) and once with one whose expectation is
//! wrong for the machine (`pc`'s image on the `virtio` machine: e1000 is
//! expunged there, so the modules after it in slot order move down).
//!
//! At the first instruction `plk-symbols` loads every module's symbols at
//! its linked address, and gdb stops on one module's probe entry by name
//! while the kernel probes it there (`rtc`, kept, in the first session;
//! `e1000`, whose probe fails, in the second): at the plan's text address
//! of the module plus the symbol's offset, with the loader's frames below.
//! gdb then loads the kept modules' symbols when the kernel
//! publishes their addresses, and stops on the `rtc` driver's self-test
//! entry, `rtc::_::__module_selftest`, by name: the stop address must be the
//! boot's `REPORT` `new_addr.text` of `rtc` plus that symbol's offset in the
//! module's text, which this test computes itself from `rtc.o`'s symbol and
//! section tables (the text class lays out executable sections in index
//! order, each at its alignment) and checks against the plan's section
//! offsets; that breakpoint is set at the first instruction, before the
//! module's final symbols exist, so it checks that gdb moves it and that
//! the reloads keep it enabled. A breakpoint set by the same name without
//! `*` must land inside the same function, and `bt` must name the
//! driver's functions and the kernel's loader frames below them.
//!
//! The first session runs again with the NMI watchdog off. Another gives
//! gdb a plan whose `rtc` checksum is not the booted image's: `plk.py`
//! must refuse it when the kernel publishes its record.

use boot_tests::report::{addr, module, read_json};
use boot_tests::{QemuConfig, preset_image, preset_plan, workspace_root};
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{LittleEndian as LE, Object, ObjectSymbol};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const MODULE: &str = "rtc";
const SYMBOL: &str = "__module_selftest";
/// The probe entry every module has.
const PROBE: &str = "__module_probe";
/// Wall-clock bound of one gdb session (a plain boot takes a few seconds).
const TIMEOUT: Duration = Duration::from_secs(120);

/// What one QEMU + gdb session printed.
struct Session {
    /// gdb's stdout and stderr.
    gdb: String,
    /// The guest's serial console.
    serial: String,
    /// QEMU's exit status (`None` if killed).
    qemu_status: Option<i32>,
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).replace("\r\n", "\n")
    })
}

/// Waits for `child` until `deadline`, killing it then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<i32> {
    loop {
        match child.try_wait().expect("waiting for a child") {
            Some(s) => return s.code(),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A TCP port on the loopback interface that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

/// Boots `cfg` stopped at its first instruction with the gdb stub on a
/// loopback port, and runs gdb in batch mode on `build/kernel.elf` with
/// `script` (`{port}` replaced), in the workspace root.
fn session(cfg: &QemuConfig, script: &str) -> Session {
    // One guest at a time: TCG guests sharing the cores get their timer
    // interrupts late (see `boot_tests::run_qemu`).
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = workspace_root();
    let kernel = root.join("build").join("kernel.elf");
    assert!(
        kernel.is_file() && cfg.image.is_file(),
        "{} or {} missing: run `make preset-images` first",
        kernel.display(),
        cfg.image.display()
    );
    let port = free_port();
    let script_path =
        std::env::temp_dir().join(format!("plk-gdb-{}-{port}.gdb", std::process::id()));
    std::fs::write(&script_path, script.replace("{port}", &port.to_string())).unwrap();

    let deadline = Instant::now() + TIMEOUT;
    let mut qemu = Command::new(&cfg.qemu)
        .args(cfg.qemu_args())
        .args(["-gdb", &format!("tcp:127.0.0.1:{port}"), "-S"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e} (`make ensure-qemu`)", cfg.qemu));
    let serial = reader(qemu.stdout.take().unwrap());
    let qemu_err = reader(qemu.stderr.take().unwrap());
    let gdb_bin = std::env::var("GDB").unwrap_or_else(|_| "gdb".into());
    let gdb = Command::new(&gdb_bin)
        .args(["-batch", "-nx", "-x"])
        .arg(&script_path)
        .arg(&kernel)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut gdb = match gdb {
        Ok(g) => g,
        Err(e) => {
            let _ = qemu.kill();
            let _ = qemu.wait();
            panic!("cannot start {gdb_bin}: {e} (`make ensure-gdb` installs Debian's gdb)");
        }
    };
    let gdb_out = reader(gdb.stdout.take().unwrap());
    let gdb_err = reader(gdb.stderr.take().unwrap());
    let gdb_status = wait_until(&mut gdb, deadline);
    // gdb has detached or the guest has exited; give QEMU a moment to end.
    let qemu_status = wait_until(&mut qemu, Instant::now() + Duration::from_secs(10));
    let _ = std::fs::remove_file(&script_path);
    let mut text = gdb_out.join().unwrap_or_default();
    text.push_str(&gdb_err.join().unwrap_or_default());
    if gdb_status.is_none() {
        text.push_str(&format!("\n[gdb killed after {TIMEOUT:?}]\n"));
    }
    let mut serial = serial.join().unwrap_or_default();
    let err = qemu_err.join().unwrap_or_default();
    if !err.is_empty() {
        serial.push_str("\n[qemu stderr]\n");
        serial.push_str(&err);
    }
    Session {
        gdb: text,
        serial,
        qemu_status,
    }
}

impl Session {
    fn describe(&self) -> String {
        format!(
            "QEMU status {:?}\n--- gdb ---\n{}\n--- serial ---\n{}",
            self.qemu_status, self.gdb, self.serial
        )
    }

    /// The address printed after `marker ` (`printf "MARKER %#lx\n", $pc`).
    fn stop(&self, marker: &str) -> u64 {
        let prefix = format!("{marker} 0x");
        let line = self
            .gdb
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("gdb never reached {marker}:\n{}", self.describe()));
        u64::from_str_radix(line.trim(), 16).unwrap()
    }

    /// The lines gdb printed between `{marker}-BEGIN` and `{marker}-END`.
    fn block(&self, marker: &str) -> &str {
        let begin = format!("{marker}-BEGIN\n");
        let start = self
            .gdb
            .find(&begin)
            .unwrap_or_else(|| panic!("no {marker} block:\n{}", self.describe()))
            + begin.len();
        let len = self.gdb[start..]
            .find(&format!("{marker}-END"))
            .unwrap_or_else(|| panic!("unterminated {marker} block:\n{}", self.describe()));
        &self.gdb[start..start + len]
    }

    fn report(&self) -> Value {
        let line = self
            .serial
            .lines()
            .find_map(|l| l.strip_prefix("REPORT "))
            .unwrap_or_else(|| panic!("no REPORT line:\n{}", self.describe()));
        serde_json::from_str(line).expect("REPORT is JSON")
    }
}

fn align_up(v: u64, a: u64) -> u64 {
    let a = a.max(1);
    v.div_ceil(a) * a
}

/// `(section name, offset of the section in the module's text class,
/// symbol value, symbol size)` of global `symbol` in the object at `path`,
/// from the object's own tables: executable allocated sections go to text
/// in section-index order (no-bits ones last), each at its alignment.
fn text_offset(path: &Path, symbol: &str) -> (String, u64, u64, u64) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = ElfFile64::<LE>::parse(&*data).expect("an ELF64 object");
    let e = LE;
    let sections = file.elf_header().sections(e, &*data).unwrap();
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok(symbol))
        .unwrap_or_else(|| panic!("{}: no symbol {symbol}", path.display()));
    let target = sym.section_index().expect("a defined symbol").0;
    let mut cursor = 0;
    let mut found = None;
    for nobits in [false, true] {
        for (i, s) in sections.iter().enumerate() {
            let flags = s.sh_flags(e);
            let name = String::from_utf8_lossy(sections.section_name(e, s).unwrap()).into_owned();
            let text = flags.contains(elf::SHF_ALLOC)
                && flags.contains(elf::SHF_EXECINSTR)
                && name != ".modinfo";
            if !text || (s.sh_type(e) == elf::SHT_NOBITS) != nobits {
                continue;
            }
            let off = align_up(cursor, s.sh_addralign(e));
            cursor = off + s.sh_size(e);
            if i == target {
                found = Some((name, off));
            }
        }
    }
    let (name, off) = found.unwrap_or_else(|| panic!("{symbol} is not in a text section"));
    (name, off, sym.address(), sym.size())
}

/// The plan's offset of section `name` of `module`.
fn plan_offset(plan: &Value, module: &str, name: &str) -> u64 {
    let m = plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == module)
        .unwrap_or_else(|| panic!("{module} not in the plan"));
    let s = m["sections"]
        .as_array()
        .unwrap_or_else(|| panic!("the plan has no sections for {module}"))
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} not among {module}'s sections in the plan"));
    assert_eq!(s["class"], "text", "{s}");
    s["offset"].as_u64().unwrap()
}

/// The gdb script: load the modules' symbols at their linked addresses at
/// the first instruction and set the breakpoints there: on module
/// `probed`'s probe entry and on the driver's self-test entry, each by name
/// at its exact address (`break *`), and one after the self-test's
/// prologue (`break NAME`). Stop on the probe entry while the kernel probes
/// the module there, then inside the probe function, then load the kept
/// modules' symbols when the kernel publishes them and reload only the
/// driver's (unloading the others): gdb sets the breakpoints again at each
/// load, so the self-test's entry breakpoint, set before, must stop where
/// the self-test runs. With it deleted (QEMU's stub can report a
/// breakpoint again right after gdb stepped over it), stop inside it at
/// the prologue breakpoint, then let the boot finish.
fn script(plan: &Path, probed: &str) -> String {
    let f = format!("{MODULE}::_::{SYMBOL}");
    format!(
        "set pagination off
set confirm off
set width 0
set breakpoint pending on
source kernel/gdb/plk.py
set plk-plan {plan}
target remote 127.0.0.1:{{port}}
plk-symbols
break {f}
set language rust
break *{probed}::_::{PROBE}
break *{f}
set language auto
continue
printf \"PLK-PROBE %#lx\\n\", $pc
echo PLK-PBT-BEGIN\\n
bt
echo PLK-PBT-END\\n
delete 2
break {probed}::probe
continue
printf \"PLK-PBODY %#lx\\n\", $pc
echo PLK-PBODY-BT-BEGIN\\n
bt
echo PLK-PBODY-BT-END\\n
delete 4
tbreak plk_debug_modules_ready
continue
plk-symbols {MODULE}
continue
printf \"PLK-ENTRY %#lx\\n\", $pc
echo PLK-SYM-BEGIN\\n
info symbol $pc
echo PLK-SYM-END\\n
echo PLK-BT-BEGIN\\n
bt
echo PLK-BT-END\\n
delete 3
continue
printf \"PLK-BODY %#lx\\n\", $pc
delete
continue
",
        plan = plan.display()
    )
}

fn check(machine: &str, image_of: &str, moved: bool, probed: &str, probe_result: &str) {
    check_with(machine, image_of, moved, probed, probe_result, "");
}

/// [`check`] with `cmdline` on the kernel command line.
fn check_with(
    machine: &str,
    image_of: &str,
    moved: bool,
    probed: &str,
    probe_result: &str,
    cmdline: &str,
) {
    let root = workspace_root();
    let plan_path = preset_plan(image_of);
    let plan = read_json(&plan_path);
    let object = root
        .join("build")
        .join("modules")
        .join(format!("{MODULE}.o"));
    let (section, sec_off, value, size) = text_offset(&object, SYMBOL);
    assert_eq!(
        plan_offset(&plan, MODULE, &section),
        sec_off,
        "{section}: the plan's offset differs from the layout of {}",
        object.display()
    );

    let cfg = QemuConfig::default()
        .image(preset_image(image_of))
        .preset(machine)
        .cmdline(cmdline)
        .for_debugger();
    let s = session(&cfg, &script(&plan_path, probed));
    let what = format!("{machine} with {image_of}'s image");
    assert_eq!(s.qemu_status, Some(33), "{what}: {}", s.describe());
    let report = s.report();
    // The watchdog is armed unless the command line turned it off.
    assert_eq!(
        report["watchdog"]["armed"],
        !cmdline.contains("nmi_watchdog=0"),
        "{}",
        report["watchdog"]
    );
    let m = module(&report, MODULE);
    assert_eq!(m["result"], "kept", "{what}: {m}");
    assert_eq!(m["selftest"], "passed", "{what}: {m}");
    let new_text = addr(&m["new_addr"]["text"]);
    let old_text = addr(&m["old_addr"]["text"]);
    assert_eq!(
        new_text != old_text,
        moved,
        "{what}: {MODULE} text {old_text:#x} -> {new_text:#x}"
    );

    // The probe stopped at its entry where the module was linked (the
    // plan's text address), which is where the kernel probes it, and below
    // it are the kernel's loader frames.
    let p = module(&report, probed);
    assert_eq!(p["result"], probe_result, "{what}: {p}");
    let probed_object = root
        .join("build")
        .join("modules")
        .join(format!("{probed}.o"));
    let (p_section, p_off, p_value, _) = text_offset(&probed_object, PROBE);
    assert_eq!(plan_offset(&plan, probed, &p_section), p_off, "{p_section}");
    let linked = &plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == probed)
        .unwrap_or_else(|| panic!("{probed} not in the plan"))["classes"]["text"];
    let (linked_text, text_size) = (
        linked["addr"].as_u64().unwrap(),
        linked["size"].as_u64().unwrap(),
    );
    assert_eq!(addr(&p["old_addr"]["text"]), linked_text, "{what}: {p}");
    let probe_at = s.stop("PLK-PROBE");
    assert_eq!(
        probe_at,
        linked_text + p_off + p_value,
        "{what}: stopped at {probe_at:#x}, but {probed}'s {PROBE} is at linked text {linked_text:#x} + {p_off:#x} ({p_section}) + {p_value:#x}\n{}",
        s.describe()
    );
    let pbt = s.block("PLK-PBT");
    let at = |needle: &str| {
        pbt.lines()
            .filter(|l| l.starts_with('#'))
            .position(|f| f.contains(needle))
            .unwrap_or_else(|| panic!("{what}: no frame with {needle} in bt at the probe:\n{pbt}"))
    };
    assert!(
        at(&format!("{probed}::_::{PROBE} (")) < at("kernel::modules::"),
        "{what}: frames at the probe out of order:\n{pbt}"
    );
    // A breakpoint on the probe function by name stops inside the module's
    // linked text, in that function.
    let in_probe = s.stop("PLK-PBODY");
    assert!(
        (linked_text..linked_text + text_size).contains(&in_probe),
        "{what}: `break {probed}::probe` stopped at {in_probe:#x}, outside {probed}'s linked text {linked_text:#x}+{text_size:#x}"
    );
    let body_bt = s.block("PLK-PBODY-BT");
    assert!(
        body_bt
            .lines()
            .any(|l| l.starts_with('#') && l.contains(&format!("{probed}::probe ("))),
        "{what}: no {probed}::probe frame at `break {probed}::probe`:\n{body_bt}"
    );

    let expected = new_text + sec_off + value;
    let entry = s.stop("PLK-ENTRY");
    assert_eq!(
        entry,
        expected,
        "{what}: stopped at {entry:#x}, but {MODULE}'s {SYMBOL} is at new text {new_text:#x} + {sec_off:#x} ({section}) + {value:#x} (slot address would be {:#x})\n{}",
        old_text + sec_off + value,
        s.describe()
    );
    let sym = s.block("PLK-SYM");
    assert!(
        sym.lines().any(
            |l| l.starts_with(&format!("{SYMBOL} in section {section} of "))
                && l.ends_with(&format!("{MODULE}.o"))
        ),
        "{what}: info symbol does not name {SYMBOL} of {MODULE}.o:\n{sym}"
    );
    let bt = s.block("PLK-BT");
    let frames: Vec<&str> = bt.lines().filter(|l| l.starts_with('#')).collect();
    let pos = |needle: &str| {
        frames
            .iter()
            .position(|f| f.contains(needle))
            .unwrap_or_else(|| panic!("{what}: no frame with {needle} in bt:\n{bt}"))
    };
    let entry_frame = pos(&format!("{MODULE}::_::{SYMBOL} ("));
    let selftest_frame = pos(&format!("{MODULE}::selftest ("));
    let loader_frame = pos("kernel::modules::load::run_selftests");
    assert!(
        selftest_frame < entry_frame && entry_frame < loader_frame,
        "{what}: frames out of order:\n{bt}"
    );

    // The breakpoint set by name while it was still pending resolved to an
    // address inside the function at its final address.
    let body = s.stop("PLK-BODY");
    assert!(
        (expected + 1..expected + size).contains(&body),
        "{what}: pending breakpoint stopped at {body:#x}, outside {SYMBOL} at {expected:#x}+{size:#x}"
    );
}

#[test]
fn breakpoints_by_name_hit_modules_where_they_were_prelinked() {
    check("pc", "pc", false, MODULE, "kept");
}

/// The same with the NMI watchdog off (its NMIs interrupt the guest a
/// thousand times a second when it is on): breakpoints must not depend on
/// them. An earlier layout missed the `plk_debug_modules_ready`
/// breakpoints this way under QEMU's TCG, cause unknown.
#[test]
fn breakpoints_by_name_hit_modules_with_the_watchdog_off() {
    check_with("pc", "pc", false, MODULE, "kept", "nmi_watchdog=0");
}

#[test]
fn breakpoints_by_name_hit_modules_where_they_were_moved() {
    // e1000's probe finds no e1000 on this machine and fails.
    check("virtio", "pc", true, "e1000", "expunged");
}

/// A plan of another image (here: the booted image's plan with `rtc`'s
/// checksum changed, as a rebuilt `rtc` would have) is refused when the
/// kernel publishes its record, naming the module and both checksums, and
/// no symbols are loaded at final addresses from it.
#[test]
fn a_plan_of_another_image_is_refused() {
    let plan_path = preset_plan("pc");
    let mut plan = read_json(&plan_path);
    let entry = plan["modules"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["name"] == MODULE)
        .expect("rtc in the plan");
    let real = entry["checksum"].as_str().unwrap().to_string();
    let real = u64::from_str_radix(real.trim_start_matches("0x"), 16).unwrap();
    let stale = real ^ 1;
    entry["checksum"] = Value::from(format!("{stale:#x}"));
    let dir = workspace_root().join("build").join("test-plans");
    std::fs::create_dir_all(&dir).unwrap();
    let stale_path = dir.join("stale.json");
    std::fs::write(&stale_path, serde_json::to_vec(&plan).unwrap()).unwrap();

    let cfg = QemuConfig::default()
        .image(preset_image("pc"))
        .preset("pc")
        .for_debugger();
    let script = format!(
        "set pagination off
set confirm off
set width 0
source kernel/gdb/plk.py
set plk-plan {stale}
target remote 127.0.0.1:{{port}}
plk-symbols
continue
echo PLK-STOPPED\\n
continue
",
        stale = stale_path.display()
    );
    let s = session(&cfg, &script);
    let want = format!(
        "plk: the plan {} is not the booted image's: modules differ: {MODULE} (plan {stale:#x}, kernel {real:#x}); set plk-plan",
        stale_path.display()
    );
    assert!(s.gdb.contains(&want), "no {want:?}:\n{}", s.describe());
    // The refusal stopped at the publication and unloaded the symbols the
    // stale plan had placed; nothing was loaded at a final address.
    assert!(s.gdb.contains("PLK-STOPPED"), "{}", s.describe());
    assert!(
        s.gdb.contains("; module symbols unloaded"),
        "{}",
        s.describe()
    );
    assert!(
        !s.gdb.contains(&format!("plk: {MODULE}: text ")),
        "{}",
        s.describe()
    );
    assert_eq!(
        s.report()["health"],
        "ok",
        "the boot went on: {}",
        s.describe()
    );
}
