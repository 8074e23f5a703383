//! Reading the kernel's `REPORT` JSON line (whose schema is the `report`
//! crate's types: every report a test reads is checked against them) and
//! the prelinker's plan.

use crate::BootOutcome;
use serde_json::Value;
use std::path::Path;

impl BootOutcome {
    /// The JSON object on the `REPORT ` line, if the kernel printed one;
    /// panics if it does not match the report schema.
    pub fn report(&self) -> Option<Value> {
        let v = self.json_line("REPORT")?;
        if let Err(e) = serde_json::from_value::<report::Report>(v.clone()) {
            panic!("REPORT line does not match the report schema ({e}): {v}");
        }
        Some(v)
    }

    /// The JSON value on the first line starting with `tag` and a space
    /// (`REPORT`, `SMP_CALLS`, ...), if the kernel printed one.
    pub fn json_line(&self, tag: &str) -> Option<Value> {
        let prefix = format!("{tag} ");
        let line = self
            .serial
            .lines()
            .find_map(|l| l.trim_end_matches('\r').strip_prefix(prefix.as_str()))?;
        Some(
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{tag} line is not JSON ({e}): {line}")),
        )
    }

    /// The report as the shared typed [`report::Report`].
    pub fn typed_report(&self) -> report::Report {
        report::find_in_log(&self.serial).unwrap_or_else(|e| panic!("{e}: {}", self.describe()))
    }

    /// [`BootOutcome::report`], panicking with the serial output if missing.
    pub fn expect_report(&self) -> Value {
        self.report()
            .unwrap_or_else(|| panic!("no REPORT line: {}", self.describe()))
    }
}

/// Reads a JSON file (the prelinker's `--plan-json` output).
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make image` first)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// The modules of a report with `result` equal to `result`, by name.
pub fn names_with_result(report: &Value, result: &str) -> Vec<String> {
    let mut v: Vec<String> = report["modules"]
        .as_array()
        .expect("report has a modules list")
        .iter()
        .filter(|m| m["result"] == result)
        .map(|m| m["name"].as_str().expect("module name").to_string())
        .collect();
    v.sort();
    v
}

/// Parses a `"0x…"` address string of the report.
pub fn addr(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("address is not a string: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("bad address {s}: {e}"))
}

impl BootOutcome {
    /// Every `REPORT` line's JSON object, in order (the boot report first,
    /// then one per `insmod`/`rmmod` or `load=` list).
    pub fn reports(&self) -> Vec<Value> {
        reports_in(&self.serial)
    }
}

/// Every `REPORT` line's JSON object in `text`, in order.
pub fn reports_in(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("REPORT "))
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("REPORT line is not JSON ({e}): {line}"))
        })
        .collect()
}

/// The last module called `name` in a report (a module loaded again after
/// `rmmod` appears once per load).
pub fn module<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["modules"]
        .as_array()
        .expect("report has a modules list")
        .iter()
        .rev()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the report"))
}
