//! `sizes`: how big each module is, and whether it grew past its budget.
//!
//! [`measure`] takes, per module and class, the used and slot bytes from a
//! prelinked image's module table, and every symbol's size from the module
//! objects (symbols with a size, in sections the prelinker places; names
//! demangled without their hash, so that a rebuild does not rename them;
//! same-named symbols of one module and class are summed, as bloat-o-meter
//! does). [`Sizes::to_json`] is also the baseline format
//! (`tests/sizes-baseline.json`); [`compare`] prints a bloat-o-meter style
//! diff against a baseline and lists every module and class over its
//! budget.
//!
//! The budget: a module's used bytes of a class may grow by at most
//! [`BUDGET_PERCENT`] % of the baseline's (rounded down) or [`BUDGET_MIN`]
//! bytes, whichever is larger. A module the baseline does not have grows
//! from 0. Shrinking is always fine.

use crate::error::Result;
use crate::input::{InputFile, ModuleObject, Placement, module_object_bytes};
use crate::{bail, elf, err};
use modtable::{Class, PerClass};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Growth allowed per module and class, in percent of the baseline bytes.
pub const BUDGET_PERCENT: u64 = 5;
/// Growth always allowed per module and class, in bytes.
pub const BUDGET_MIN: u64 = 1024;
/// Version of the JSON format.
pub const FORMAT_VERSION: u64 = 1;

/// The growth a class of `old` bytes is allowed.
pub fn budget(old: u64) -> u64 {
    (old * BUDGET_PERCENT / 100).max(BUDGET_MIN)
}

/// One symbol (or the sum of same-named ones) of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolSize {
    /// Demangled name without the hash.
    pub name: String,
    /// The class of its section.
    pub class: Class,
    /// Bytes.
    pub size: u64,
}

/// One module's sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleSizes {
    /// Module name.
    pub name: String,
    /// Used bytes per class.
    pub used: PerClass<u64>,
    /// Slot bytes per class.
    pub slot: PerClass<u64>,
    /// Its symbols, largest first (empty if no object was given).
    pub symbols: Vec<SymbolSize>,
}

/// The sizes of every module of an image, in table order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    /// The modules.
    pub modules: Vec<ModuleSizes>,
}

fn demangle(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    match rustc_demangle::try_demangle(&s) {
        Ok(d) => format!("{d:#}"),
        Err(_) => s.into_owned(),
    }
}

/// What `sizes` needs of one module object: its module name, the bytes of
/// each class as a link lays it out (GOT included), and its symbols.
type ObjectSizes = (String, PerClass<u64>, Vec<SymbolSize>);

/// The module name, class sizes and symbols of one module object.
fn object_symbols(obj: &InputFile) -> Result<ObjectSizes> {
    let bytes = module_object_bytes(&obj.name, &obj.data)?;
    let o = ModuleObject::parse(&obj.name, bytes)?;
    let mut layout = crate::layout::ModuleLayout::of(&o);
    layout.add_got(crate::relocate::lower(&o, &layout)?.got_entries);
    let mut sums: BTreeMap<(Class, String), u64> = BTreeMap::new();
    for s in &o.symbols {
        if s.size == 0 || s.typ == elf::STT_SECTION {
            continue;
        }
        let Some(Placement::Class { class, .. }) = o.placement.get(s.shndx as usize) else {
            continue;
        };
        *sums.entry((*class, demangle(s.name()))).or_default() += s.size;
    }
    let mut symbols: Vec<SymbolSize> = sums
        .into_iter()
        .map(|((class, name), size)| SymbolSize { name, class, size })
        .collect();
    symbols.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
    Ok((o.info.name().to_string(), layout.size, symbols))
}

/// Measures the modules of the prelinked `image` (named `image_name` in
/// messages), with the symbols of `objects` (each must be one of the
/// image's modules; a module without an object has no symbols listed).
pub fn measure(image_name: &str, image: &[u8], objects: &[InputFile]) -> Result<Sizes> {
    let plan = crate::inspect::inspect(image_name, image)?;
    let mut modules: Vec<ModuleSizes> = plan
        .modules
        .iter()
        .map(|m| ModuleSizes {
            name: m.name.clone(),
            used: m.placement.size.map(u64::from),
            slot: m.placement.slot_size.map(u64::from),
            symbols: Vec::new(),
        })
        .collect();
    let per_object = crate::par::map(objects.iter().collect(), |_, o| object_symbols(o));
    // The object given for each module, by index in `modules`.
    let mut given: Vec<Option<&str>> = vec![None; modules.len()];
    for (o, r) in objects.iter().zip(crate::par::collect(per_object)?) {
        let (name, size, symbols) = r;
        let i = modules.iter().position(|m| m.name == name).ok_or_else(|| {
            err!(
                NotInImage,
                "{}: module `{name}` is not in {image_name}",
                o.name
            )
        })?;
        if let Some(first) = given[i] {
            bail!(
                NotInImage,
                "{}: module `{name}` was given already, by {first}: give one object per module",
                o.name
            );
        }
        let m = &mut modules[i];
        if let Some(c) = Class::ALL.into_iter().find(|&c| size[c] != m.used[c]) {
            bail!(
                NotInImage,
                "{}: module `{name}` has {} bytes of {} here but {} in {image_name}: not the object the image was linked from",
                o.name,
                size[c],
                c.name(),
                m.used[c]
            );
        }
        given[i] = Some(&o.name);
        m.symbols = symbols;
    }
    Ok(Sizes { modules })
}

fn per_class(p: &PerClass<u64>) -> Value {
    let mut o = Map::new();
    for c in Class::ALL {
        o.insert(c.name().into(), json!(p[c]));
    }
    Value::Object(o)
}

fn class_named(name: &str) -> Option<Class> {
    Class::ALL.into_iter().find(|c| c.name() == name)
}

impl Sizes {
    /// The sizes as JSON (the baseline format).
    pub fn to_json(&self) -> Value {
        let modules: Vec<Value> = self
            .modules
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "used": per_class(&m.used),
                    "slot": per_class(&m.slot),
                    "symbols": m.symbols.iter().map(|s| json!({
                        "name": s.name,
                        "class": s.class.name(),
                        "size": s.size,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "version": FORMAT_VERSION,
            "budget": {"percent": BUDGET_PERCENT, "min_bytes": BUDGET_MIN},
            "modules": modules,
        })
    }

    /// [`Sizes::to_json`] as text for a file under version control: one
    /// line per module header and per symbol, so that a change shows as
    /// the lines of the symbols that changed.
    pub fn to_baseline_text(&self) -> String {
        let j = self.to_json();
        let mut s = format!(
            "{{\n  \"version\": {},\n  \"budget\": {},\n  \"modules\": [",
            j["version"], j["budget"]
        );
        for (i, m) in j["modules"].as_array().into_iter().flatten().enumerate() {
            let _ = write!(
                s,
                "{}\n    {{\"name\": {}, \"used\": {}, \"slot\": {}, \"symbols\": [",
                if i == 0 { "" } else { "," },
                m["name"],
                m["used"],
                m["slot"]
            );
            let syms = m["symbols"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            for (k, sym) in syms.iter().enumerate() {
                let _ = write!(s, "{}\n      {sym}", if k == 0 { "" } else { "," });
            }
            s.push_str(if syms.is_empty() { "]}" } else { "\n    ]}" });
        }
        s.push_str("\n  ]\n}\n");
        s
    }

    /// Reads sizes back from their JSON (`name` is used in messages).
    pub fn from_json(name: &str, text: &str) -> Result<Sizes> {
        let bad = |what: &str| err!(Baseline, "{name}: {what}");
        let v: Value = serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
        if v["version"].as_u64() != Some(FORMAT_VERSION) {
            return Err(bad(&format!(
                "format version {}, expected {FORMAT_VERSION}",
                v["version"]
            )));
        }
        let classes = |o: &Value, what: &str| -> Result<PerClass<u64>> {
            let mut p = PerClass([0; 3]);
            for c in Class::ALL {
                p[c] = o[c.name()]
                    .as_u64()
                    .ok_or_else(|| bad(&format!("{what}.{} is not a number", c.name())))?;
            }
            Ok(p)
        };
        let mut modules = Vec::new();
        for m in v["modules"]
            .as_array()
            .ok_or_else(|| bad("no modules list"))?
        {
            let mname = m["name"]
                .as_str()
                .ok_or_else(|| bad("a module has no name"))?;
            let mut symbols = Vec::new();
            for s in m["symbols"].as_array().into_iter().flatten() {
                let sym = || bad(&format!("module {mname}: malformed symbol {s}"));
                symbols.push(SymbolSize {
                    name: s["name"].as_str().ok_or_else(sym)?.to_string(),
                    class: s["class"].as_str().and_then(class_named).ok_or_else(sym)?,
                    size: s["size"].as_u64().ok_or_else(sym)?,
                });
            }
            modules.push(ModuleSizes {
                name: mname.to_string(),
                used: classes(&m["used"], &format!("module {mname}: used"))?,
                slot: classes(&m["slot"], &format!("module {mname}: slot"))?,
                symbols,
            });
        }
        Ok(Sizes { modules })
    }

    /// A table of every module's used and slot bytes per class, each
    /// followed by its `top` largest symbols.
    pub fn to_text(&self, top: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<16} {:>15} {:>15} {:>15} {:>15}",
            "module", "text used/slot", "rodata", "data", "total"
        );
        let mut total = (0, 0);
        for m in &self.modules {
            let cell = |u: u64, sl: u64| format!("{u}/{sl}");
            let (u, sl) = (m.used.total(), m.slot.total());
            total = (total.0 + u, total.1 + sl);
            let _ = writeln!(
                s,
                "{:<16} {:>15} {:>15} {:>15} {:>15}",
                m.name,
                cell(m.used[Class::Text], m.slot[Class::Text]),
                cell(m.used[Class::Rodata], m.slot[Class::Rodata]),
                cell(m.used[Class::Data], m.slot[Class::Data]),
                cell(u, sl)
            );
            for sym in m.symbols.iter().take(top) {
                let _ = writeln!(
                    s,
                    "    {:>8} {:<6} {}",
                    sym.size,
                    sym.class.name(),
                    sym.name
                );
            }
        }
        let _ = writeln!(
            s,
            "{:<16} {:>15} {:>15} {:>15} {:>15}",
            "total",
            "",
            "",
            "",
            format!("{}/{}", total.0, total.1)
        );
        s
    }
}

/// A module and class that grew past its budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverBudget {
    /// Module name.
    pub module: String,
    /// The class.
    pub class: Class,
    /// Baseline bytes (0 for a module the baseline does not have).
    pub old: u64,
    /// Bytes now.
    pub new: u64,
    /// The growth allowed.
    pub budget: u64,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "module {} {} grew by {} bytes ({} -> {}{}), over its budget of {} bytes",
            self.module,
            self.class.name(),
            self.new - self.old,
            self.old,
            self.new,
            if self.old == 0 {
                ", not in the baseline"
            } else {
                ""
            },
            self.budget
        )
    }
}

/// What [`compare`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    /// The bloat-o-meter style report.
    pub text: String,
    /// Every module and class over its budget.
    pub over: Vec<OverBudget>,
}

/// One symbol's line of the diff.
struct SymbolRow<'a> {
    name: &'a str,
    class: &'static str,
    old: u64,
    new: u64,
}

impl SymbolRow<'_> {
    fn delta(&self) -> i128 {
        self.new as i128 - self.old as i128
    }
}

fn delta(old: u64, new: u64) -> String {
    format!("{:+}", new as i128 - old as i128)
}

/// Compares `new` with `old` (the baseline): per module and class the used
/// bytes (old, new, delta, budget), then per module every symbol whose size
/// changed, appeared or went away, bloat-o-meter style, with totals.
pub fn compare(old: &Sizes, new: &Sizes) -> Comparison {
    let mut s = String::new();
    let mut over = Vec::new();
    let old_of = |name: &str| old.modules.iter().find(|m| m.name == name);
    let _ = writeln!(
        s,
        "{:<16} {:<6} {:>9} {:>9} {:>8} {:>8}",
        "module", "class", "old", "new", "delta", "budget"
    );
    let (mut total_old, mut total_new) = (0u64, 0u64);
    for m in &new.modules {
        let o = old_of(&m.name);
        for c in Class::ALL {
            let (was, now) = (o.map_or(0, |o| o.used[c]), m.used[c]);
            total_old += was;
            total_new += now;
            let b = budget(was);
            let flag = if now > was + b {
                over.push(OverBudget {
                    module: m.name.clone(),
                    class: c,
                    old: was,
                    new: now,
                    budget: b,
                });
                "  OVER BUDGET"
            } else {
                ""
            };
            if was != now || o.is_none() {
                let _ = writeln!(
                    s,
                    "{:<16} {:<6} {:>9} {:>9} {:>8} {:>8}{flag}",
                    m.name,
                    c.name(),
                    was,
                    now,
                    delta(was, now),
                    b
                );
            }
        }
    }
    for o in &old.modules {
        if !new.modules.iter().any(|m| m.name == o.name) {
            for c in Class::ALL {
                total_old += o.used[c];
                if o.used[c] > 0 {
                    let _ = writeln!(
                        s,
                        "{:<16} {:<6} {:>9} {:>9} {:>8} {:>8}  (module removed)",
                        o.name,
                        c.name(),
                        o.used[c],
                        0,
                        delta(o.used[c], 0),
                        "-"
                    );
                }
            }
        }
    }
    let pct = if total_old == 0 {
        String::from("n/a")
    } else {
        format!(
            "{:+.2}%",
            (total_new as f64 - total_old as f64) * 100.0 / total_old as f64
        )
    };
    let _ = writeln!(
        s,
        "Total: Before={total_old}, After={total_new}, chg {pct} (used bytes of all modules and classes)"
    );

    let names: BTreeSet<&str> = new
        .modules
        .iter()
        .chain(&old.modules)
        .map(|m| m.name.as_str())
        .collect();
    for name in names {
        let syms = |z: &Sizes| -> BTreeMap<(String, &'static str), u64> {
            z.modules
                .iter()
                .find(|m| m.name == name)
                .map(|m| {
                    m.symbols
                        .iter()
                        .map(|x| ((x.name.clone(), x.class.name()), x.size))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (a, b) = (syms(old), syms(new));
        let keys: BTreeSet<&(String, &str)> = a.keys().chain(b.keys()).collect();
        let mut rows: Vec<SymbolRow<'_>> = keys
            .into_iter()
            .filter_map(|k| {
                let (old, new) = (
                    a.get(k).copied().unwrap_or(0),
                    b.get(k).copied().unwrap_or(0),
                );
                (old != new).then_some(SymbolRow {
                    name: k.0.as_str(),
                    class: k.1,
                    old,
                    new,
                })
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        rows.sort_by(|x, y| {
            y.delta()
                .abs()
                .cmp(&x.delta().abs())
                .then_with(|| x.name.cmp(y.name))
        });
        let count = |f: fn(&SymbolRow<'_>) -> bool| rows.iter().filter(|r| f(r)).count();
        let added = count(|r| r.old == 0);
        let removed = count(|r| r.new == 0);
        let grew = count(|r| r.old > 0 && r.new > r.old);
        let shrank = count(|r| r.new > 0 && r.new < r.old);
        let up: i128 = rows.iter().map(SymbolRow::delta).filter(|&d| d > 0).sum();
        let down: i128 = rows.iter().map(SymbolRow::delta).filter(|&d| d < 0).sum();
        let _ = writeln!(
            s,
            "\n{name}: add/remove: {added}/{removed} grow/shrink: {grew}/{shrank} up/down: {up}/{down} ({})",
            up + down
        );
        let _ = writeln!(
            s,
            "{:<6} {:<60} {:>8} {:>8} {:>8}",
            "class", "symbol", "old", "new", "delta"
        );
        for r in rows {
            let _ = writeln!(
                s,
                "{:<6} {:<60} {:>8} {:>8} {:>+8}",
                r.class,
                r.name,
                r.old,
                r.new,
                r.delta()
            );
        }
    }
    Comparison { text: s, over }
}

/// Fails, naming every module and class over its budget, if there is one.
pub fn check(c: &Comparison, baseline: &str) -> Result<()> {
    if c.over.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = c.over.iter().map(|o| o.to_string()).collect();
    bail!(
        SizeBudget,
        "{}\n(budget: {BUDGET_PERCENT} % of the baseline's bytes or {BUDGET_MIN} bytes, whichever is larger, per module and class; if the growth is intended, run `make sizes-update` and commit {baseline} with the change)",
        lines.join("\n")
    )
}

/// What `prelinker sizes` was asked to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The prelinked image.
    pub image: String,
    /// Module objects, for their symbols.
    pub objects: Vec<String>,
    /// Print JSON instead of the table.
    pub json: bool,
    /// Symbols listed per module in the table.
    pub top: usize,
    /// Compare with this baseline and fail past the budget.
    pub baseline: Option<String>,
    /// Write the sizes to this file as the new baseline.
    pub write_baseline: Option<String>,
}

/// Runs `prelinker sizes`: measures, then prints the table or JSON, or
/// writes the baseline, or prints the comparison with the baseline to
/// `out` and fails if a module grew past its budget.
pub fn run(o: &Options, out: &mut dyn std::io::Write) -> Result<()> {
    let io = |e: std::io::Error| err!(Io, "writing the output: {e}");
    let image = InputFile::read(std::path::Path::new(&o.image))?;
    let objects = o
        .objects
        .iter()
        .map(|p| InputFile::read(std::path::Path::new(p)))
        .collect::<Result<Vec<_>>>()?;
    let sizes = measure(&image.name, &image.data, &objects)?;
    if let Some(path) = &o.write_baseline {
        let text = sizes.to_baseline_text();
        crate::image::write_atomic(std::path::Path::new(path), text.as_bytes())?;
        writeln!(
            out,
            "sizes: wrote {} modules to {path}",
            sizes.modules.len()
        )
        .map_err(io)?;
    }
    if let Some(path) = &o.baseline {
        // A regular file of at most the input limit, like every input.
        let f = crate::input::InputFile::read(std::path::Path::new(path))?;
        let text = String::from_utf8(f.data)
            .map_err(|e| err!(Baseline, "{path}: the baseline is not UTF-8 text: {e}"))?;
        let old = Sizes::from_json(path, &text)?;
        let c = compare(&old, &sizes);
        write!(out, "{}", c.text).map_err(io)?;
        return check(&c, path);
    }
    if o.json {
        writeln!(out, "{}", sizes.to_json()).map_err(io)?;
    } else if o.write_baseline.is_none() {
        write!(out, "{}", sizes.to_text(o.top)).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, used: [u64; 3], symbols: &[(&str, u64)]) -> ModuleSizes {
        ModuleSizes {
            name: name.into(),
            used: PerClass(used),
            slot: PerClass(used.map(|u| u.div_ceil(64) * 64)),
            symbols: symbols
                .iter()
                .map(|&(n, size)| SymbolSize {
                    name: n.into(),
                    class: Class::Text,
                    size,
                })
                .collect(),
        }
    }

    #[test]
    fn budget_is_five_percent_or_one_kib() {
        assert_eq!(budget(0), 1024);
        assert_eq!(budget(20_480), 1024);
        assert_eq!(budget(20_500), 1025);
        assert_eq!(budget(100_000), 5000);
    }

    #[test]
    fn growth_up_to_the_budget_passes_one_byte_more_fails() {
        let old = Sizes {
            modules: vec![module("a", [100_000, 1000, 0], &[])],
        };
        let at = Sizes {
            modules: vec![module("a", [105_000, 2024, 0], &[])],
        };
        let c = compare(&old, &at);
        assert!(c.over.is_empty(), "{:?}", c.over);
        assert!(check(&c, "b.json").is_ok());
        let past = Sizes {
            modules: vec![module("a", [105_001, 2025, 0], &[])],
        };
        let c = compare(&old, &past);
        let over: Vec<(Class, u64)> = c.over.iter().map(|o| (o.class, o.new - o.old)).collect();
        assert_eq!(over, [(Class::Text, 5001), (Class::Rodata, 1025)]);
        let e = check(&c, "b.json").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::SizeBudget);
        assert!(
            e.message().contains(
                "module a text grew by 5001 bytes (100000 -> 105001), over its budget of 5000 bytes"
            ),
            "{e}"
        );
        assert!(e.message().contains("commit b.json"), "{e}");
    }

    #[test]
    fn new_modules_grow_from_zero_and_removed_ones_are_fine() {
        let old = Sizes {
            modules: vec![module("gone", [5000, 0, 0], &[])],
        };
        let new = Sizes {
            modules: vec![
                module("small", [1024, 0, 0], &[]),
                module("big", [1025, 0, 0], &[]),
            ],
        };
        let c = compare(&old, &new);
        assert_eq!(c.over.len(), 1, "{:?}", c.over);
        assert_eq!(c.over[0].module, "big");
        assert!(c.over[0].to_string().contains("not in the baseline"));
        assert!(c.text.contains("(module removed)"), "{}", c.text);
    }

    #[test]
    fn symbol_diff_is_bloat_o_meter_style() {
        let old = Sizes {
            modules: vec![module(
                "m",
                [300, 0, 0],
                &[("f", 100), ("g", 50), ("h", 10)],
            )],
        };
        let new = Sizes {
            modules: vec![module(
                "m",
                [340, 0, 0],
                &[("f", 160), ("g", 40), ("k", 10)],
            )],
        };
        let c = compare(&old, &new);
        assert!(
            c.text
                .contains("m: add/remove: 1/1 grow/shrink: 1/1 up/down: 70/-20 (50)"),
            "{}",
            c.text
        );
        let rows: Vec<&str> = c.text.lines().filter(|l| l.starts_with("text ")).collect();
        assert_eq!(rows.len(), 4, "{}", c.text);
        assert!(
            rows[0].contains(" f ") && rows[0].ends_with("+60"),
            "{}",
            rows[0]
        );
        assert!(
            c.text.contains("Total: Before=300, After=340, chg +13.33%"),
            "{}",
            c.text
        );
    }

    #[test]
    fn json_round_trips() {
        let s = Sizes {
            modules: vec![module("m", [300, 20, 8], &[("f", 100)])],
        };
        let text = s.to_json().to_string();
        assert_eq!(Sizes::from_json("x.json", &text).unwrap(), s);
        let text = s.to_baseline_text();
        assert_eq!(Sizes::from_json("x.json", &text).unwrap(), s, "{text}");
        assert_eq!(text.lines().filter(|l| l.contains("\"size\"")).count(), 1);
        let e = Sizes::from_json("x.json", "{\"version\": 9}").unwrap_err();
        assert!(e.message().contains("x.json: format version 9"), "{e}");
    }
}
