//! Boot tests of the module loader: the kernel's REPORT JSON is checked
//! against the prelinker's own plan for the same image (recomputed here
//! independently), for each reclaim policy, and stale calls into expunged
//! modules must trap naming the module.

use boot_tests::report::{addr, names_with_result, read_json};
use boot_tests::{QemuConfig, run_qemu, workspace_root};
use serde_json::Value;
use std::collections::BTreeMap;

const PAGE: u64 = 4096;
const CLASSES: [&str; 3] = ["text", "rodata", "data"];

fn plan() -> Value {
    read_json(&workspace_root().join("build").join("plan.json"))
}

fn boot(cmdline: &str) -> Value {
    let out = run_qemu(&QemuConfig::default().cmdline(cmdline));
    out.assert_passed();
    out.expect_report()
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Per plan module: name -> (slot address, slot size, used size, align) per class.
type PlanMod = BTreeMap<&'static str, (u64, u64, u64, u64)>;

fn plan_modules(plan: &Value) -> Vec<(String, PlanMod)> {
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
                    (c, (g("addr"), g("slot_size"), g("size"), g("align")))
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

/// What a policy should reclaim per class, recomputed from the plan and the
/// kept set: (reclaimed, failed, tail).
fn expected(plan: &Value, report: &Value, policy: &str) -> BTreeMap<&'static str, (u64, u64, u64)> {
    let kept = kept_set(report);
    let mods = plan_modules(plan);
    let mut out = BTreeMap::new();
    for c in CLASSES {
        let base = plan["regions"][c]["base"].as_u64().unwrap();
        let size = plan["regions"][c]["size"].as_u64().unwrap();
        let slots_end = mods
            .iter()
            .map(|(_, m)| m[c].0 + m[c].1)
            .max()
            .unwrap_or(base)
            .max(base);
        let tail = base + size - slots_end;
        let failed_slots: u64 = mods
            .iter()
            .filter(|(n, _)| !kept[n])
            .map(|(_, m)| m[c].1)
            .sum();
        let e = match policy {
            "keep" => (0, 0, 0),
            "holes" => {
                // Pages not touched by any kept module's used bytes.
                let mut live = std::collections::BTreeSet::new();
                for (n, m) in &mods {
                    let (at, _, used, _) = m[c];
                    if kept[n] && used > 0 {
                        for p in (at / PAGE)..align_up(at + used, PAGE) / PAGE {
                            live.insert(p);
                        }
                    }
                }
                let reclaimed = size - live.len() as u64 * PAGE;
                (reclaimed, failed_slots, tail)
            }
            _ => {
                // Simulate 64-byte packing of the kept modules in plan order.
                let mut cursor = base;
                for (n, m) in &mods {
                    let (_, _, used, align) = m[c];
                    if kept[n] && used > 0 {
                        cursor = align_up(cursor, align.max(64)) + used;
                    }
                }
                (size - (align_up(cursor, PAGE) - base), failed_slots, tail)
            }
        };
        out.insert(c, e);
    }
    out
}

fn check_against_plan(report: &Value, plan: &Value, policy: &str) {
    assert_eq!(report["policy"], policy);
    let exp = expected(plan, report, policy);
    let mut total = 0;
    for c in CLASSES {
        let r = &report["regions"][c];
        let (reclaimed, failed, tail) = exp[c];
        assert_eq!(
            r["reclaimed_bytes"].as_u64().unwrap(),
            reclaimed,
            "{policy} {c} reclaimed"
        );
        if policy != "keep" {
            assert_eq!(
                r["failed_bytes"].as_u64().unwrap(),
                failed,
                "{policy} {c} failed bytes"
            );
            assert_eq!(
                r["tail_bytes"].as_u64().unwrap(),
                tail,
                "{policy} {c} tail bytes"
            );
        }
        total += reclaimed;
    }
    assert_eq!(report["reclaimed_bytes"].as_u64().unwrap(), total);
    let split = report["failed_bytes"].as_i64().unwrap()
        + report["padding_bytes"].as_i64().unwrap()
        + report["tail_bytes"].as_i64().unwrap();
    assert_eq!(split as u64, total, "split adds up");
    // The allocator grew by exactly the reclaimed frames.
    let before = report["free_frames_before"].as_u64().unwrap();
    let after = report["free_frames_after"].as_u64().unwrap();
    assert_eq!(
        after - before,
        total / PAGE,
        "free frames grew by the reclaimed frames"
    );
    assert_eq!(report["wx_pages"].as_u64(), Some(0), "no W+X page");
    // Slot sizes and addresses are the prelinker's.
    for (name, m) in plan_modules(plan) {
        let rm = report["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} missing from the report"));
        for c in CLASSES {
            assert_eq!(rm["slot"][c].as_u64().unwrap(), m[c].1, "{name} {c} slot");
            assert_eq!(rm["used"][c].as_u64().unwrap(), m[c].2, "{name} {c} used");
            assert_eq!(addr(&rm["old_addr"][c]), m[c].0, "{name} {c} old address");
        }
    }
}

#[test]
fn compact_report_matches_the_prelinker_plan() {
    let plan = plan();
    let r = boot("");
    check_against_plan(&r, &plan, "compact");
    assert!(!names_with_result(&r, "kept").is_empty());
    assert!(!names_with_result(&r, "expunged").is_empty());
    // Kept modules are packed at 64 bytes, in order, below their slots.
    for c in CLASSES {
        let mut end = plan["regions"][c]["base"].as_u64().unwrap();
        for m in r["modules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["result"] == "kept")
        {
            let size = m["used"][c].as_u64().unwrap();
            if size == 0 {
                continue;
            }
            let at = addr(&m["new_addr"][c]);
            assert_eq!(
                at % 64,
                0,
                "{} {c} at {at:#x} is 64-byte aligned",
                m["name"]
            );
            assert!(
                at >= end && at < end + 64.max(PAGE),
                "{} {c} packed right after the previous module",
                m["name"]
            );
            assert!(at <= addr(&m["old_addr"][c]), "moved downwards");
            end = at + size;
        }
    }
    // Every expunged module released everything: no heap, frame or IRQ leak.
    for m in r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["result"] == "expunged")
    {
        if m["leak"].is_null() {
            continue; // never probed (dependency or checksum)
        }
        for k in ["heap_bytes", "frames", "irqs"] {
            assert_eq!(
                m["leak"][k].as_i64(),
                Some(0),
                "{} leaked {k}: {}",
                m["name"],
                m["leak"]
            );
        }
    }
    // Huge pages at boot; after compaction the live bytes take 4 KiB pages only.
    assert_eq!(r["mappings_before"]["2m"].as_u64(), Some(3));
    let live: u64 = CLASSES
        .iter()
        .map(|c| r["regions"][c]["live_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(r["mappings_after"]["4k"].as_u64(), Some(live / PAGE));
    assert_eq!(r["mappings_after"]["2m"].as_u64(), Some(0));
    // The COM1 driver, moved and relocated, is the console and passed its self-test.
    assert_eq!(r["console"], "uart_com1");
    let com1 = r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "uart_com1")
        .unwrap();
    assert_eq!(com1["selftest"], "passed");
}

#[test]
fn three_policies_on_one_image() {
    let plan = plan();
    let keep = boot("reclaim=keep");
    let holes = boot("reclaim=holes");
    let compact = boot("reclaim=compact");
    check_against_plan(&keep, &plan, "keep");
    check_against_plan(&holes, &plan, "holes");
    check_against_plan(&compact, &plan, "compact");
    // Same hardware, same decisions.
    assert_eq!(kept_set(&keep), kept_set(&compact));
    assert_eq!(kept_set(&holes), kept_set(&compact));
    let rec = |r: &Value| r["reclaimed_bytes"].as_u64().unwrap();
    assert_eq!(rec(&keep), 0);
    assert_eq!(rec(&holes) % PAGE, 0);
    assert!(
        rec(&holes) > 0 && rec(&compact) > rec(&holes),
        "compact reclaims the most"
    );
    // keep: one 2 MiB page per region; holes splits them; compact maps the
    // fewest pages.
    assert_eq!(keep["mappings_after"]["2m"].as_u64(), Some(3));
    assert_eq!(keep["mappings_after"]["4k"].as_u64(), Some(0));
    let small = |r: &Value| r["mappings_after"]["4k"].as_u64().unwrap();
    assert_eq!(holes["mappings_after"]["2m"].as_u64(), Some(0));
    assert!(
        small(&compact) < small(&holes),
        "compact needs fewer mappings than holes"
    );
    // Nothing moves under keep and holes.
    for r in [&keep, &holes] {
        for m in r["modules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["result"] == "kept")
        {
            assert_eq!(m["new_addr"], m["old_addr"]);
            assert_eq!(m["relocs_redone"].as_u64(), Some(0));
        }
    }
}

#[test]
fn bad_reclaim_policy_is_an_error() {
    let out = run_qemu(&QemuConfig::default().cmdline("reclaim=sometimes"));
    out.assert_failed();
    assert!(
        out.serial
            .contains("reclaim=sometimes: expected keep, holes or compact"),
        "{}",
        out.describe()
    );
}

/// Calls the old probe address of `module` after boot; the trap must name it.
fn stale_call(policy: &str, module: &str, vector: &str) {
    let out =
        run_qemu(&QemuConfig::default().cmdline(&format!("reclaim={policy} stale_call={module}")));
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

#[test]
fn stale_call_into_expunged_module_traps_and_names_it() {
    // holes: the failed slot is unmapped; keep: it is poisoned with int3;
    // compact: the last slot lies in the freed tail.
    let r = boot("");
    let last_expunged = r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["result"] == "expunged")
        .map(|m| m["name"].as_str().unwrap().to_string())
        .expect("an expunged module");
    stale_call("holes", "nodev", "#PF");
    stale_call("keep", "nodev", "#BP");
    stale_call("compact", &last_expunged, "#PF");
}
