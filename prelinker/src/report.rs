//! `prelinker report LOG`: renders the kernel's reclaimed-memory report from
//! a saved boot log (the `REPORT {json}` line) as a text table, and as an SVG
//! memory map of each class region before (slots as prelinked) and after
//! (kept modules where they were packed, freed ranges).

use crate::error::Result;
use crate::{bail, err};
use serde_json::Value;
use std::fmt::Write;

const CLASSES: [&str; 3] = ["text", "rodata", "data"];

/// Finds and parses the `REPORT` line of a boot log; `name` is used in errors.
pub fn parse_log(name: &str, log: &str) -> Result<Value> {
    let Some(line) = log
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("REPORT "))
    else {
        bail!(
            Report,
            "{name}: no REPORT line (did the boot reach the module report?)"
        );
    };
    let v: Value = serde_json::from_str(line)
        .map_err(|e| err!(Report, "{name}: the REPORT line is not valid JSON: {e}"))?;
    if !v["modules"].is_array() || !v["regions"].is_object() {
        bail!(
            Report,
            "{name}: the REPORT object has no modules list or regions"
        );
    }
    Ok(v)
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn addr(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

fn modules(r: &Value) -> &[Value] {
    r["modules"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The report as a text table with its totals.
pub fn table(r: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "policy {}", r["policy"].as_str().unwrap_or("?"));
    let _ = writeln!(
        s,
        "{:<18} {:<9} {:>15} {:>15} {:>13} {:>7} {:>9} {:<8} reason",
        "module", "result", "text slot>pack", "rodata", "data", "relocs", "probe us", "selftest"
    );
    for m in modules(r) {
        let cls = |c: &str| format!("{}>{}", num(&m["slot"][c]), num(&m["packed"][c]));
        let selftest = match m["selftest"].as_str() {
            Some("passed") => "ok",
            Some(_) => "FAIL",
            None => "-",
        };
        let reason = match (m["reason"].as_str(), m["selftest_error"].as_str()) {
            (Some(r), _) => r.to_string(),
            (None, Some(e)) => format!("selftest failed: {e}"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            s,
            "{:<18} {:<9} {:>15} {:>15} {:>13} {:>7} {:>9} {:<8} {}",
            m["name"].as_str().unwrap_or("?"),
            m["result"].as_str().unwrap_or("?"),
            cls("text"),
            cls("rodata"),
            cls("data"),
            num(&m["relocs_redone"]),
            num(&m["probe_ns"]) / 1000,
            selftest,
            reason
        );
    }
    let _ = writeln!(
        s,
        "reclaimed {} bytes: failed modules {}, padding {}, unused tail {}",
        r["reclaimed_bytes"], r["failed_bytes"], r["padding_bytes"], r["tail_bytes"]
    );
    let _ = writeln!(
        s,
        "packed {} bytes; page-aligned layout of the same modules {} bytes",
        r["packed_bytes"], r["page_aligned_bytes"]
    );
    let _ = writeln!(
        s,
        "free frames {} -> {}; mappings {}x4K+{}x2M before, {}x4K+{}x2M after; W+X pages {}",
        r["free_frames_before"],
        r["free_frames_after"],
        r["mappings_before"]["4k"],
        r["mappings_before"]["2m"],
        r["mappings_after"]["4k"],
        r["mappings_after"]["2m"],
        r["wx_pages"]
    );
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The report as an SVG memory map: per class region, a "before" bar with
/// every slot as prelinked and an "after" bar with the kept modules where
/// they live and the freed ranges. Bars span the region's first bytes up to
/// the end of its last slot; the rest of the region is unused tail (noted).
pub fn svg(r: &Value) -> Result<String> {
    const W: f64 = 1000.0;
    const X0: f64 = 90.0;
    const BAR: f64 = 26.0;
    let mut body = String::new();
    let mut y = 40.0;
    for c in CLASSES {
        let reg = &r["regions"][c];
        let mods = modules(r);
        let base = mods
            .iter()
            .filter_map(|m| addr(&m["old_addr"][c]))
            .min()
            .ok_or_else(|| err!(Report, "report has no {c} addresses"))?;
        let end = mods
            .iter()
            .filter_map(|m| Some(addr(&m["old_addr"][c])? + num(&m["slot"][c])))
            .max()
            .unwrap_or(base)
            .max(base + 4096);
        let span = (end - base) as f64;
        let x = |a: u64| X0 + (a.saturating_sub(base)) as f64 / span * (W - X0 - 10.0);
        let _ = writeln!(
            body,
            r#"<text x="10" y="{}" font-weight="bold">{c}</text><text x="{X0}" y="{}" font-size="11">region {} bytes, shown: first {} bytes (the rest is unused tail); reclaimed {} bytes</text>"#,
            y - 8.0,
            y - 8.0,
            num(&reg["size"]),
            end - base,
            num(&reg["reclaimed_bytes"])
        );
        for (label, after) in [("before", false), ("after", true)] {
            let _ = writeln!(
                body,
                r##"<text x="10" y="{}" font-size="12">{label}</text><rect x="{X0}" y="{y}" width="{}" height="{BAR}" fill="#eee" stroke="#999"/>"##,
                y + 17.0,
                W - X0 - 10.0
            );
            if after {
                for f in reg["freed"].as_array().into_iter().flatten() {
                    if let (Some(s), Some(e)) = (addr(&f[0]), addr(&f[1])) {
                        let e = e.min(end);
                        if e > s {
                            let _ = writeln!(
                                body,
                                r##"<rect x="{:.2}" y="{y}" width="{:.2}" height="{BAR}" fill="url(#freed)"><title>freed {s:#x}..{e:#x}</title></rect>"##,
                                x(s),
                                x(e) - x(s)
                            );
                        }
                    }
                }
            }
            for m in mods {
                let kept = m["result"] == "kept";
                let name = esc(m["name"].as_str().unwrap_or("?"));
                let (at, len, fill) = if after {
                    if !kept {
                        continue;
                    }
                    match addr(&m["new_addr"][c]) {
                        Some(a) => (a, num(&m["packed"][c]), "#4a4"),
                        None => continue,
                    }
                } else {
                    let Some(a) = addr(&m["old_addr"][c]) else {
                        continue;
                    };
                    let slot = num(&m["slot"][c]);
                    if slot > 0 {
                        let _ = writeln!(
                            body,
                            r##"<rect x="{:.2}" y="{y}" width="{:.2}" height="{BAR}" fill="none" stroke="#666"/>"##,
                            x(a),
                            x(a + slot) - x(a)
                        );
                    }
                    (a, num(&m["used"][c]), if kept { "#4a4" } else { "#c44" })
                };
                if len == 0 {
                    continue;
                }
                let width = (x(at + len) - x(at)).max(0.5);
                let _ = writeln!(
                    body,
                    r##"<rect x="{:.2}" y="{}" width="{width:.2}" height="{}" fill="{fill}" stroke="#222" stroke-width="0.3"><title>{name} {c}: {len} bytes at {at:#x}</title></rect>"##,
                    x(at),
                    y + 3.0,
                    BAR - 6.0
                );
                // Label blocks wide enough for the name (about 5.5 px a character).
                if width > 5.5 * name.len() as f64 + 4.0 {
                    let _ = writeln!(
                        body,
                        r##"<text x="{:.2}" y="{}" font-size="9" fill="#fff">{name}</text>"##,
                        x(at) + 2.0,
                        y + BAR / 2.0 + 3.0
                    );
                }
            }
            y += BAR + 8.0;
        }
        y += 30.0;
    }
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" font-family="sans-serif">
<defs><pattern id="freed" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#88f" stroke-width="3"/></pattern></defs>
<text x="10" y="18" font-size="14">Module regions, policy {}: green kept, red expunged, hatched freed (before = slots as prelinked, after = as packed)</text>
{body}</svg>
"##,
        y + 10.0,
        esc(r["policy"].as_str().unwrap_or("?"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"noise
REPORT {"policy":"compact","modules":[{"name":"a","result":"kept","reason":null,"slot":{"text":4096,"rodata":0,"data":0},"used":{"text":100,"rodata":0,"data":0},"packed":{"text":100,"rodata":0,"data":0},"old_addr":{"text":"0x1000","rodata":"0x9000","data":"0x11000"},"new_addr":{"text":"0x1000","rodata":"0x9000","data":"0x11000"},"relocs_redone":3,"probe_ns":5000,"selftest":"failed","selftest_error":"MAC changed"},{"name":"b<x>","result":"expunged","reason":"no device","slot":{"text":4096,"rodata":0,"data":0},"used":{"text":50,"rodata":0,"data":0},"packed":{"text":0,"rodata":0,"data":0},"old_addr":{"text":"0x2000","rodata":"0x9000","data":"0x11000"},"new_addr":{"text":null,"rodata":null,"data":null},"relocs_redone":0,"probe_ns":7000}],"regions":{"text":{"size":8192,"reclaimed_bytes":4096,"freed":[["0x2000","0x3000"]]},"rodata":{"size":8192,"freed":[]},"data":{"size":8192,"freed":[]}},"reclaimed_bytes":4096,"failed_bytes":4096,"padding_bytes":0,"tail_bytes":0}
"#;

    #[test]
    fn renders_table_and_svg() {
        let r = parse_log("boot.log", LOG).unwrap();
        let t = table(&r);
        assert!(
            t.contains("b<x>") && t.contains("no device") && t.contains("4096>100"),
            "{t}"
        );
        let a = t.lines().find(|l| l.starts_with("a ")).unwrap();
        assert!(
            a.contains(" FAIL ") && a.ends_with("selftest failed: MAC changed"),
            "{a}"
        );
        let b = t.lines().find(|l| l.starts_with("b<x>")).unwrap();
        assert!(b.contains(" -        no device"), "{b}");
        let s = svg(&r).unwrap();
        assert!(
            s.starts_with("<svg") && s.contains("b&lt;x&gt;") && s.contains("freed 0x2000..0x3000")
        );
        assert_eq!(
            s.matches("fill=\"#c44\"").count(),
            1,
            "one expunged module drawn"
        );
    }

    #[test]
    fn missing_or_bad_report_is_an_error() {
        let e = parse_log("boot.log", "no report here\n").unwrap_err();
        assert!(e.message().contains("boot.log: no REPORT line"), "{e}");
        let e = parse_log("x.log", "REPORT {oops\n").unwrap_err();
        assert!(
            e.message()
                .contains("x.log: the REPORT line is not valid JSON"),
            "{e}"
        );
    }
}
