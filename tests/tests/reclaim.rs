//! Boot tests of the module loader under layout v2: for each reclaim
//! policy, the kernel's REPORT JSON is checked against figures this test
//! computes itself from the prelinker's plan of the same image (class
//! ranges, the kernel's own bytes, slots) and the kept set the kernel
//! reports: mappings, freed bytes, pools, the heap tail, free frames, and
//! the accounting of every byte of every class range. W^X holds through
//! every mapping, and stale calls into expunged modules trap naming them.

use boot_tests::report::{addr, names_with_result, read_json};
use boot_tests::{QemuConfig, number_after, preset_image, preset_plan, run_qemu};
use serde_json::Value;
use std::collections::BTreeMap;

const PAGE: u64 = 4096;
const HUGE: u64 = 2 << 20;
use reclaim::policy::Policy;
use report::CLASS_NAMES as CLASSES;
/// The reclaim policies' names, as the kernel's command line takes them.
const POLICIES: [&str; 4] = [
    Policy::ALL[0].name(),
    Policy::ALL[1].name(),
    Policy::ALL[2].name(),
    Policy::ALL[3].name(),
];

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

fn align_down(v: u64, a: u64) -> u64 {
    v / a * a
}

/// The pc preset's plan: its image is prelinked with its expectation.
fn plan() -> Value {
    read_json(&preset_plan("pc"))
}

fn boot(cmdline: &str) -> Value {
    let out = run_qemu(&QemuConfig::for_preset("pc").cmdline(cmdline));
    out.assert_passed();
    out.expect_report()
}

/// One class of one module in the plan.
#[derive(Clone, Copy, Debug)]
struct Slot {
    addr: u64,
    size: u64,
    align: u64,
}

fn plan_modules(plan: &Value) -> Vec<(String, BTreeMap<&'static str, Slot>)> {
    plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let classes = CLASSES
                .iter()
                .map(|&c| {
                    let k = &m["classes"][c];
                    let g = |f: &str| k[f].as_u64().unwrap_or_else(|| panic!("plan {c}.{f}"));
                    (
                        c,
                        Slot {
                            addr: g("addr"),
                            size: g("size"),
                            align: g("align"),
                        },
                    )
                })
                .collect();
            (m["name"].as_str().unwrap().to_string(), classes)
        })
        .collect()
}

fn kept_set(report: &Value) -> BTreeMap<String, bool> {
    report["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["result"] == "kept",
            )
        })
        .collect()
}

/// The class range `(start, end, kernel_end)` of the plan.
fn range(plan: &Value, c: &str) -> (u64, u64, u64) {
    let r = &plan["regions"][c];
    let g = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("plan region {c}: {r}"));
    (g(&r["range"][0]), g(&r["range"][1]), g(&r["kernel_end"]))
}

/// What this test expects of one class under one policy.
#[derive(Debug, Default)]
struct Expect {
    live_end: u64,
    kept: u64,
    /// Expunged modules' used bytes still mapped, poisoned, not reused.
    failed: u64,
    freed: u64,
    pool: u64,
    heap: u64,
    map_4k: u64,
    map_2m: u64,
}

/// Computes the expectation of class `c` from the plan and the kept set:
/// kept modules packed at 64 bytes in slot order (under compact; where
/// they lie otherwise).
fn expected(plan: &Value, report: &Value, policy: &str, c: &str) -> Expect {
    let kept = kept_set(report);
    let (start, end, kernel_end) = range(plan, c);
    let base = plan["regions"][c]["base"].as_u64().unwrap();
    let moves = policy.starts_with("compact");
    let mut cursor = base;
    let mut live: Vec<(u64, u64)> = Vec::new();
    // Where the expunged modules' used bytes lie: where they were linked,
    // since this image's expectation holds (expected failures come last
    // and are probed in place) and nothing moves under keep and holes.
    let mut dead: Vec<(u64, u64)> = Vec::new();
    for (name, m) in plan_modules(plan) {
        let s = m[c];
        if s.size == 0 {
            continue;
        }
        if !kept[&name] {
            dead.push((s.addr, s.addr + s.size));
            continue;
        }
        let at = if moves {
            align_up(cursor, s.align.max(64))
        } else {
            s.addr
        };
        cursor = at + s.size;
        live.push((at, at + s.size));
    }
    let live_end = live.iter().map(|r| r.1).fold(kernel_end, u64::max);
    let kept_bytes = live.iter().map(|r| r.1 - r.0).sum();
    let mut e = Expect {
        live_end,
        kept: kept_bytes,
        ..Expect::default()
    };
    let huge_end = align_up(live_end, HUGE);
    let full = align_down(live_end, HUGE);
    match policy {
        "keep" => {
            // Nothing is freed or reused: every expunged byte stays.
            e.failed = dead.iter().map(|r| r.1 - r.0).sum();
            e.map_2m = (huge_end - start) / HUGE;
        }
        "holes" => {
            let mut pages = std::collections::BTreeSet::new();
            live.push((start, kernel_end));
            for (s, t) in &live {
                for p in s / PAGE..align_up(*t, PAGE) / PAGE {
                    pages.insert(p);
                }
            }
            e.freed = end - start - pages.len() as u64 * PAGE;
            // Expunged bytes on a page that stays mapped (a kernel or kept
            // byte shares it) stay; the others went with their page.
            e.failed = dead
                .iter()
                .flat_map(|&(s, t)| {
                    (s / PAGE..align_up(t, PAGE) / PAGE)
                        .filter(|p| pages.contains(p))
                        .map(move |p| t.min((p + 1) * PAGE) - s.max(p * PAGE))
                })
                .sum();
            // A huge page with a hole in it is split: its mapped pages below
            // the live end count as 4 KiB mappings.
            let mut h = start;
            while h < live_end {
                let inside = pages
                    .iter()
                    .filter(|&&p| p * PAGE >= h && p * PAGE < h + HUGE)
                    .count() as u64;
                if inside == HUGE / PAGE {
                    e.map_2m += 1;
                } else {
                    e.map_4k += pages
                        .iter()
                        .filter(|&&p| p * PAGE >= h && p * PAGE < live_end.min(h + HUGE))
                        .count() as u64;
                }
                h += HUGE;
            }
        }
        "compact" => {
            e.freed = end - huge_end;
            let tail = huge_end - align_up(live_end, 64);
            if c == "data" {
                e.heap = tail;
            } else {
                e.pool = tail;
            }
            e.map_2m = (huge_end - start) / HUGE;
        }
        "compact-split" => {
            e.freed = end - align_up(live_end, PAGE);
            // The last live page stays mapped whole: expunged bytes on it
            // past the live end stay (under compact that tail is a pool).
            let last = (live_end, align_up(live_end, PAGE));
            e.failed = dead
                .iter()
                .map(|&(s, t)| t.min(last.1).saturating_sub(s.max(last.0)))
                .sum();
            e.map_2m = (full - start) / HUGE;
            e.map_4k = (align_up(live_end, PAGE) - full) / PAGE;
        }
        p => panic!("unknown policy {p}"),
    }
    e
}

fn check_against_plan(report: &Value, plan: &Value, policy: &str) {
    assert_eq!(report["policy"], policy);
    let mut freed_total = 0;
    for c in CLASSES {
        let e = expected(plan, report, policy, c);
        let (start, end, kernel_end) = range(plan, c);
        let a = &report["accounting"][c];
        let g = |f: &str| {
            a[f].as_u64()
                .unwrap_or_else(|| panic!("accounting.{c}.{f}: {a}"))
        };
        let what = format!("{policy} {c}");
        assert_eq!(addr(&a["range"][0]), start, "{what} range start");
        assert_eq!(addr(&a["range"][1]), end, "{what} range end");
        assert_eq!(g("size"), end - start, "{what} size");
        let sum: u64 = [
            "kernel", "kept", "failed", "padding", "freed", "pool", "heap",
        ]
        .iter()
        .map(|f| g(f))
        .sum();
        assert_eq!(sum, g("size"), "{what}: accounting adds up to the range");
        assert_eq!(g("kernel"), kernel_end - start, "{what} kernel bytes");
        assert_eq!(g("kept"), e.kept, "{what} kept bytes");
        assert_eq!(g("failed"), e.failed, "{what} failed bytes");
        assert_eq!(g("freed"), e.freed, "{what} freed bytes");
        assert_eq!(g("pool"), e.pool, "{what} pool bytes");
        assert_eq!(g("heap"), e.heap, "{what} heap bytes");
        assert_eq!(
            addr(&report["regions"][c]["live_end"]),
            e.live_end,
            "{what} live end"
        );
        let m = &report["mappings_after"][c];
        assert_eq!(m["4k"].as_u64(), Some(e.map_4k), "{what} 4 KiB mappings");
        assert_eq!(m["2m"].as_u64(), Some(e.map_2m), "{what} 2 MiB mappings");
        freed_total += e.freed;
    }
    assert_eq!(report["freed_bytes"].as_u64(), Some(freed_total));
    // The frame allocator grew by exactly the freed frames.
    let before = report["free_frames_before"].as_u64().unwrap();
    let after = report["free_frames_after"].as_u64().unwrap();
    assert_eq!(
        after - before,
        freed_total / PAGE,
        "{policy}: free frames grew by the freed frames"
    );
    // The heap grew by exactly the data tail, as its allocator counts.
    let heap = report["accounting"]["data"]["heap"].as_u64().unwrap();
    let hb = report["heap_free_before"].as_u64().unwrap();
    let ha = report["heap_free_after"].as_u64().unwrap();
    assert_eq!(
        ha - hb,
        heap,
        "{policy}: heap free space grew by the data tail"
    );
    assert_eq!(
        report["wx_pages"].as_u64(),
        Some(0),
        "{policy}: no W+X page"
    );
    assert_eq!(
        report["wx_alias_frames"].as_u64(),
        Some(0),
        "{policy}: no frame writable in one mapping and X or R in another"
    );
    // Slot sizes and addresses are the prelinker's.
    for (name, m) in plan_modules(plan) {
        let rm = report["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} missing from the report"));
        for c in CLASSES {
            assert_eq!(
                rm["used"][c].as_u64().unwrap(),
                m[c].size,
                "{name} {c} used"
            );
            assert_eq!(
                addr(&rm["old_addr"][c]),
                m[c].addr,
                "{name} {c} old address"
            );
        }
    }
}

#[test]
fn compact_keeps_huge_pages_and_accounts_for_every_byte() {
    let plan = plan();
    let r = boot("");
    check_against_plan(&r, &plan, "compact");
    assert!(!names_with_result(&r, "kept").is_empty());
    assert!(!names_with_result(&r, "expunged").is_empty());
    // The goal on the pc machine: one 2 MiB page per class over kernel +
    // live module bytes, no 4 KiB page, nothing moved under the matching
    // expectation.
    for c in CLASSES {
        assert_eq!(r["mappings_after"][c]["2m"].as_u64(), Some(1), "{c}");
    }
    assert_eq!(r["mappings_after"]["4k"].as_u64(), Some(0));
    assert_eq!(r["mappings_after"]["2m"].as_u64(), Some(3));
    assert_eq!(r["prediction"]["bytes_moved"].as_u64(), Some(0));
    assert_eq!(r["prediction"]["relocs_redone"].as_u64(), Some(0));
    // Every expunged module released everything: no heap, frame or IRQ leak.
    for m in r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["result"] == "expunged" && !m["leak"].is_null())
    {
        for k in ["heap_bytes", "frames", "irqs"] {
            assert_eq!(m["leak"][k].as_i64(), Some(0), "{} leaked {k}", m["name"]);
        }
    }
    assert_eq!(r["console"], "uart_com1");
}

#[test]
fn every_policy_on_one_image() {
    let plan = plan();
    let reports: Vec<(&str, Value)> = POLICIES
        .iter()
        .map(|&p| (p, boot(&format!("reclaim={p}"))))
        .collect();
    for (p, r) in &reports {
        check_against_plan(r, &plan, p);
    }
    let by = |name: &str| &reports.iter().find(|(p, _)| *p == name).unwrap().1;
    let (keep, holes, compact, split) =
        (by("keep"), by("holes"), by("compact"), by("compact-split"));
    // Same hardware, same decisions.
    for r in [holes, compact, split] {
        assert_eq!(kept_set(keep), kept_set(r));
    }
    let freed = |r: &Value| r["freed_bytes"].as_u64().unwrap();
    let small = |r: &Value| r["mappings_after"]["4k"].as_u64().unwrap();
    assert_eq!(freed(keep), 0);
    // compact-split frees more than compact, in more 4 KiB mappings.
    assert!(freed(split) > freed(compact), "compact-split frees more");
    assert!(
        small(split) > small(compact),
        "and needs more 4 KiB mappings"
    );
    assert_eq!(small(compact), 0);
    // Nothing moves under keep and holes.
    for r in [keep, holes] {
        for m in r["modules"].as_array().unwrap() {
            assert_eq!(m["bytes_moved"].as_u64(), Some(0), "{}", m["name"]);
        }
    }
}

#[test]
fn text_is_not_writable_through_the_direct_map() {
    let out = run_qemu(&QemuConfig::for_preset("pc").cmdline("fault=wx_alias"));
    out.assert_failed();
    let k = out.kernel_output();
    let line = out
        .line_with("fault=wx_alias: writing to")
        .unwrap_or_else(|| panic!("no wx_alias line: {}", out.describe()));
    let alias = number_after(line, "writing to").expect("alias address");
    assert!(
        k.contains("EXCEPTION: vector 14 #PF (Page Fault)"),
        "{}",
        out.describe()
    );
    assert_eq!(
        number_after(k, "CR2=").expect("CR2 printed"),
        alias,
        "the write faulted at the alias"
    );
    assert!(!k.contains("did not fault"), "{}", out.describe());
}

#[test]
fn bad_reclaim_policy_is_an_error() {
    let out = run_qemu(&QemuConfig::for_preset("pc").cmdline("reclaim=sometimes"));
    out.assert_failed();
    assert!(
        out.serial
            .contains("reclaim=sometimes: expected keep, holes, compact or compact-split"),
        "{}",
        out.describe()
    );
}

/// Calls the old probe address of `module` after boot; the trap must name it.
fn stale_call(policy: &str, module: &str, vector: &str) {
    let out = run_qemu(
        &QemuConfig::for_preset("pc").cmdline(&format!("reclaim={policy} stale_call={module}")),
    );
    out.assert_failed();
    let line = out
        .line_with("STALE:")
        .unwrap_or_else(|| panic!("no STALE line: {}", out.describe()));
    assert!(
        line.contains(&format!("expunged module {module}")),
        "{line}"
    );
    assert!(line.contains(vector), "{line}");
}

/// The text pool is trap-filled to its end, where no module ever was.
#[test]
fn text_pool_is_trap_filled() {
    let out = run_qemu(&QemuConfig::for_preset("pc").cmdline("stale_call=pool"));
    out.assert_failed();
    let k = out.kernel_output();
    let r = out.expect_report();
    let pool = &r["regions"]["text"]["pool"];
    let at = number_after(k, "calling").expect("call address printed");
    assert!(
        addr(&pool[0]) <= at && at < addr(&pool[1]),
        "{at:#x} in the pool {pool}"
    );
    assert!(
        k.contains("EXCEPTION: vector 3 #BP"),
        "int3 at the end of the pool: {}",
        out.describe()
    );
}

#[test]
fn stale_call_into_expunged_module_traps_and_names_it() {
    // keep: poisoned with int3; compact: its slot lies in the int3 pool;
    // compact-split: in the freed 4 KiB tail; holes: unmapped.
    assert!(preset_image("pc").is_file());
    stale_call("keep", "nodev", "#BP");
    stale_call("compact", "virtio_net", "#BP");
    stale_call("compact-split", "virtio_net", "#PF");
    stale_call("holes", "virtio_net", "#PF");
}
