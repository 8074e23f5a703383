//! Expectations: which modules a machine is expected to keep.
//!
//! `link --expect FILE` reads one module name per line (blank lines and `#`
//! comments allowed): the modules named are expected to be kept, every other
//! input module is expected to be expunged. The link orders the expected-kept
//! modules first (dependency order preserved), then the expected failures,
//! so that when the expectation holds, every kept module already sits at the
//! packing cursor and nothing moves at boot. `prelinker expect BOOT.log`
//! writes such a file from a saved boot log: the last boot's outcome
//! predicts the next one.

use crate::bail;
use crate::error::Result;
use modtable::table::Prediction;
use report::{Outcome, Report};
use std::collections::BTreeSet;

/// The set of modules expected to be kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectation {
    /// Where it came from, for messages.
    pub source: String,
    /// Names of the modules expected to be kept.
    pub kept: BTreeSet<String>,
}

/// Whether `name` is a valid module name: `[a-z][a-z0-9_]{0,31}`.
pub fn valid_module_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

impl Expectation {
    /// Parses an expectation file's text; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Expectation> {
        let mut kept = BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            let name = line.split('#').next().unwrap_or("").trim();
            if name.is_empty() {
                continue;
            }
            if !valid_module_name(name) {
                bail!(
                    Expectation,
                    "{source}:{}: `{name}` is not a module name ([a-z][a-z0-9_]{{0,31}}, one per line)",
                    i + 1
                );
            }
            if !kept.insert(name.to_string()) {
                bail!(
                    Expectation,
                    "{source}:{}: module `{name}` is listed twice",
                    i + 1
                );
            }
        }
        Ok(Expectation {
            source: source.to_string(),
            kept,
        })
    }

    /// The prediction for module `name`.
    pub fn predict(&self, name: &str) -> Prediction {
        if self.kept.contains(name) {
            Prediction::Kept
        } else {
            Prediction::Expunged
        }
    }

    /// Fails if the expectation names a module that is not among `modules`.
    pub fn check_known<'a>(&self, modules: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let known: BTreeSet<&str> = modules.into_iter().collect();
        if let Some(n) = self.kept.iter().find(|n| !known.contains(n.as_str())) {
            bail!(
                Expectation,
                "{}: expects module `{n}` to be kept, but no input module has that name (update the file, e.g. with `prelinker expect BOOT.log`)",
                self.source
            );
        }
        Ok(())
    }
}

/// The expectation file for a boot's report: the kept modules' names, one
/// per line, after a comment saying where they came from.
pub fn from_report(source: &str, report: &Report) -> String {
    let mut s = format!(
        "# Modules expected to be kept (prelinker link --expect), from the boot log {source}.\n"
    );
    for n in report.names(Outcome::Kept) {
        s.push_str(&n);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_comments_and_blank_lines() {
        let e = Expectation::parse("x.expect", "# kept\npci\n\n e1000 # nic\n").unwrap();
        assert_eq!(e.kept.len(), 2);
        assert_eq!(e.predict("pci"), Prediction::Kept);
        assert_eq!(e.predict("nodev"), Prediction::Expunged);
        assert!(e.check_known(["pci", "e1000", "nodev"]).is_ok());
        let err = e.check_known(["pci"]).unwrap_err();
        assert!(err.message().contains("`e1000`"), "{err}");
    }

    #[test]
    fn rejects_bad_and_duplicate_names() {
        let err = Expectation::parse("x.expect", "pci\nE1000\n").unwrap_err();
        assert!(err.message().contains("x.expect:2"), "{err}");
        let err = Expectation::parse("x.expect", "pci\npci\n").unwrap_err();
        assert!(err.message().contains("twice"), "{err}");
        assert!(valid_module_name("a"));
        assert!(valid_module_name(&"a".repeat(32)));
        assert!(!valid_module_name(&"a".repeat(33)));
        assert!(!valid_module_name("1a") && !valid_module_name("a-b") && !valid_module_name(""));
    }

    #[test]
    fn written_from_a_report() {
        let m = |name: &str, result| report::Module {
            name: name.into(),
            result,
            reason: None,
            reason_kind: None,
            depends: vec![],
            slot: Default::default(),
            used: Default::default(),
            packed: Default::default(),
            predicted: None,
            bytes_moved: 0,
            old_addr: Default::default(),
            new_addr: Default::default(),
            relocs_redone: 0,
            probe_ns: 0,
            move_ns: 0,
            checksum_ns: 0,
            copy_ns: 0,
            relocate_ns: 0,
            memmove_ns: 0,
            selftest: None,
            selftest_error: None,
            runtime_faults: vec![],
            released: None,
            leak: None,
            percpu: 0,
            loaded: None,
            bytes_returned: None,
            object: None,
            load_ns: None,
            relocs_applied: None,
            got_entries: None,
            placed: None,
        };
        let r = Report {
            modules: vec![
                m("rtc", Outcome::Kept),
                m("nodev", Outcome::Expunged),
                m("pci", Outcome::Kept),
            ],
            ..Report::default()
        };
        let text = from_report("boot.log", &r);
        assert!(text.starts_with("# "));
        let e = Expectation::parse("t", &text).unwrap();
        assert_eq!(e.kept.into_iter().collect::<Vec<_>>(), ["pci", "rtc"]);
    }
}
