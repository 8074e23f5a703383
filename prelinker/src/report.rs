//! `prelinker report LOG`: renders the kernel's reclaimed-memory report from
//! a saved boot log (the `REPORT {json}` line) as a text table, and as an SVG
//! memory map of each class region before (slots as prelinked) and after
//! (kept modules where they were packed, freed ranges).

use crate::error::Result;
use crate::{bail, err};
use report::{Outcome, Report};
use std::fmt::Write;

use report::CLASS_NAMES as CLASSES;

/// Finds and parses the `REPORT` line of a boot log; `name` is used in
/// errors. The log is bytes, not text: a serial console carries whatever the
/// firmware, the boot loader or a faulting module printed, so only the
/// `REPORT` line itself must be UTF-8.
pub fn parse_log(name: &str, log: &[u8]) -> Result<Report> {
    let Some((n, line)) = log.split(|&b| b == b'\n').enumerate().find_map(|(n, l)| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        Some((n + 1, l.strip_prefix(report::LINE_PREFIX.as_bytes())?))
    }) else {
        bail!(
            Report,
            "{name}: no REPORT line (did the boot reach the module report?)"
        );
    };
    let line = std::str::from_utf8(line).map_err(|e| {
        err!(
            Report,
            "{name}: the REPORT line (line {n}) is not valid UTF-8: {e}"
        )
    })?;
    report::parse_line(line).map_err(|e| err!(Report, "{name}: line {n}: {e}"))
}

/// The report as the kernel's console table (the shared renderer).
pub fn table(r: &Report) -> String {
    report::render(r)
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
pub fn svg(r: &Report) -> Result<String> {
    const W: f64 = 1000.0;
    const X0: f64 = 90.0;
    const BAR: f64 = 26.0;
    let mut body = String::new();
    let mut y = 40.0;
    for (ci, c) in CLASSES.into_iter().enumerate() {
        let reg = r.regions.get(ci);
        let mods = &r.modules;
        let Some(base) = mods.iter().map(|m| m.old_addr.get(ci).0).min() else {
            bail!(Report, "report has no modules");
        };
        let end = mods
            .iter()
            .map(|m| m.old_addr.get(ci).0 + m.slot.get(ci))
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
            reg.size,
            end - base,
            reg.reclaimed_bytes
        );
        for (label, after) in [("before", false), ("after", true)] {
            let _ = writeln!(
                body,
                r##"<text x="10" y="{}" font-size="12">{label}</text><rect x="{X0}" y="{y}" width="{}" height="{BAR}" fill="#eee" stroke="#999"/>"##,
                y + 17.0,
                W - X0 - 10.0
            );
            if after {
                for f in &reg.freed {
                    let (s, e) = (f[0].0, f[1].0.min(end));
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
            for m in mods {
                let kept = m.result == Outcome::Kept;
                let name = esc(&m.name);
                let (at, len, fill) = if after {
                    if !kept {
                        continue;
                    }
                    match m.new_addr.get(ci) {
                        Some(a) => (a.0, *m.packed.get(ci), "#4a4"),
                        None => continue,
                    }
                } else {
                    let a = m.old_addr.get(ci).0;
                    let slot = *m.slot.get(ci);
                    if slot > 0 {
                        let _ = writeln!(
                            body,
                            r##"<rect x="{:.2}" y="{y}" width="{:.2}" height="{BAR}" fill="none" stroke="#666"/>"##,
                            x(a),
                            x(a + slot) - x(a)
                        );
                    }
                    (a, *m.used.get(ci), if kept { "#4a4" } else { "#c44" })
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
        esc(&r.policy)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use report::{Classes, Hex, Module};

    fn log_text() -> String {
        let m = Module {
            slot: Classes {
                text: 4096,
                rodata: 0,
                data: 0,
            },
            used: Classes {
                text: 100,
                rodata: 0,
                data: 0,
            },
            packed: Classes {
                text: 100,
                rodata: 0,
                data: 0,
            },
            old_addr: Classes {
                text: Hex(0x1000),
                rodata: Hex(0x9000),
                data: Hex(0x11000),
            },
            new_addr: Classes {
                text: Some(Hex(0x1000)),
                rodata: Some(Hex(0x9000)),
                data: Some(Hex(0x11000)),
            },
            relocs_redone: 3,
            probe_ns: 5000,
            selftest: Some("failed".into()),
            selftest_error: Some("MAC changed".into()),
            ..Module::new("a", Outcome::Kept)
        };
        let b = Module {
            name: "b<x>".into(),
            result: Outcome::Expunged,
            reason: Some("no device".into()),
            old_addr: Classes {
                text: Hex(0x2000),
                ..m.old_addr
            },
            new_addr: Classes::default(),
            used: Classes { text: 50, ..m.used },
            packed: Classes::default(),
            selftest: None,
            selftest_error: None,
            ..m.clone()
        };
        let mut r = Report {
            policy: "compact".into(),
            modules: vec![m, b],
            ..Report::default()
        };
        r.regions.text.freed = vec![[Hex(0x2000), Hex(0x3000)]];
        format!("noise\nREPORT {}\n", r.to_json())
    }

    #[test]
    fn renders_table_and_svg() {
        let r = parse_log("boot.log", log_text().as_bytes()).unwrap();
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

    /// Bytes that are not UTF-8 anywhere but on the REPORT line (and CRLF
    /// line ends) do not matter.
    #[test]
    fn non_utf8_bytes_outside_the_report_line() {
        let mut log: Vec<u8> = b"SeaBIOS \xff\xfe\r\n\x1b[2J garbage \xc3\x28 \x80\r\n".to_vec();
        log.extend_from_slice(
            log_text()
                .trim_start_matches("noise\n")
                .replace('\n', "\r\n")
                .as_bytes(),
        );
        log.extend_from_slice(b"after \xf0\x28\x8c\x28\n\xff");
        assert!(std::str::from_utf8(&log).is_err());
        let r = parse_log("boot.log", &log).unwrap();
        assert_eq!(r, parse_log("boot.log", log_text().as_bytes()).unwrap());
        assert!(table(&r).contains("no device"));
        // On the REPORT line itself they are an error, naming the line.
        let e = parse_log("boot.log", b"x\nREPORT {\"policy\":\"\xff\"}\n").unwrap_err();
        assert!(
            e.message()
                .contains("boot.log: the REPORT line (line 2) is not valid UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn missing_or_bad_report_is_an_error() {
        let e = parse_log("boot.log", b"no report here\n").unwrap_err();
        assert!(e.message().contains("boot.log: no REPORT line"), "{e}");
        let e = parse_log("x.log", b"REPORT {oops\n").unwrap_err();
        assert!(
            e.message()
                .contains("x.log: line 1: the REPORT line is not a valid report"),
            "{e}"
        );
    }
}
