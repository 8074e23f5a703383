//! Modules loaded after boot: `insmod` of a relocatable object from the
//! initrd into the pools of the kept huge pages, `rmmod`, and what the
//! report, the shell and stale-call explanations need to know about them.
//!
//! An `insmod`:
//! 1. finds the object in the [`crate::initrd`] and parses it ([`elf`]:
//!    `xmas-elf`, every bound checked first, errors named);
//! 2. checks its `.modinfo`: not loaded yet, dependencies kept, exports
//!    not taken;
//! 3. lays out its classes and places them ([`place`]): text and rodata at
//!    64 bytes in their pools (or a fresh 2 MiB page), data in the data
//!    range's heap tail;
//! 4. resolves its undefined symbols against the kernel's exports, then
//!    the exports of kept modules it depends on (built-in ones from the
//!    export list after the module table, `modtable::exports`), and
//!    relocates it with `modtable::reloc` ([`relocate`]);
//! 5. writes text and rodata through a temporary RW+NX alias of just the
//!    pages written, data in place;
//! 6. probes it under the same guard as built-in modules, at its final
//!    address. Kept: its self-test runs there. Failed: what it acquired is
//!    released, its bytes go back to the pools poisoned (`int3`).
//!
//! A load refused after placing, a failed probe and an `rmmod` all end by
//! giving back every fresh page no module uses any more (unmapped, its
//! frames freed): a failed load leaves no memory taken behind it.
//!
//! `rmmod` refuses a module kept modules depend on (naming them); else it
//! releases everything the module holds (IRQ handlers first), poisons its
//! bytes and gives them back (a built-in's text and rodata join the pools).
//! A stale call into an unloaded or failed module's old bytes traps on the
//! poison (or a missing mapping) and [`explain_stale`] names the module.
//!
//! Each `insmod` and `rmmod` prints a `REPORT` line again ([`report`]): the
//! boot report with the runtime modules appended (`loaded: "runtime"`),
//! the current W^X counts and mappings, and `pools`. `unsafe` code: only
//! the writes of [`place`] and the guarded calls into module code of
//! `call`; the deliberate stale call is
//! [`crate::modules::stale::call_expecting_a_trap`].

// Unsafe code only in the documented seams: `place` (the writes of module
// bytes) and `call` (the guarded calls into module code).
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod call;
pub mod elf;
mod error;
#[allow(unsafe_code)]
pub mod place;
mod relocate;
mod report;

pub use error::LoadError;
pub use place::{Fresh, Placement, Where};
pub use report::module_fields;

use crate::arch::tsc;
use crate::kapi::ReleaseSummary;
use crate::mm::{HUGE_PAGE_SIZE, paging};
use crate::modules::guard::{self, Outcome};
use crate::modules::{Module, Reason, Resources, Totals};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;
use modtable::exports::ExportList;
use modtable::{Class, PerClass};
use place::Placer;
use reclaim::align_up;
use reclaim::plan::ClassPlan;
use spin::{Mutex, Once};

/// How a module loaded after boot got where it is.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The initrd entry it came from.
    pub object: String,
    /// Time to parse, place, relocate and write it (before its probe).
    pub load_ns: u64,
    /// Relocations applied (GOT entries included).
    pub relocs: u32,
    /// GOT entries in its rodata.
    pub got_entries: u32,
    /// Each class's placement (`None` for an empty class).
    pub placed: PerClass<Option<Placement>>,
    /// The symbols it exports, with their addresses and the hash of the
    /// signature it records for them (0: none).
    pub exports: Vec<(String, u64, u64)>,
}

/// Where a module that is gone was, for stale-call explanations.
struct Former {
    name: &'static str,
    how: &'static str,
    ranges: Vec<(u64, u64, Class)>,
}

/// A refused `insmod`, for the report.
struct Refusal {
    object: String,
    kind: &'static str,
    error: String,
}

/// The loader's state after boot.
struct Loader {
    /// Built-in modules (table order), then every module loaded since.
    mods: Vec<Module>,
    /// The boot figures (W^X and mappings refreshed after each operation).
    totals: Option<Totals>,
    placer: Placer,
    /// The ranges of each class range the module phase kept mapped.
    mapped: PerClass<Vec<(u64, u64)>>,
    refusals: Vec<Refusal>,
}

static LOADER: Mutex<Option<Loader>> = Mutex::new(None);
/// Names of modules loaded after boot, by owner index. Apart from
/// [`LOADER`], which an `insmod` holds while the module's probe runs and
/// calls services that name it.
static NAMES: Mutex<Vec<(usize, &'static str)>> = Mutex::new(Vec::new());
static BUILTIN_EXPORTS: Once<Option<ExportList<'static>>> = Once::new();
/// Bytes of runtime modules from placement until they fail or are
/// unloaded: `(owner index, start, end)`. With [`FORMER`], what the
/// exception hook reads; neither is held while module code runs, unlike
/// [`LOADER`].
static LIVE: Mutex<Vec<(usize, u64, u64)>> = Mutex::new(Vec::new());
/// Where modules that failed or were unloaded after boot were, newest last.
static FORMER: Mutex<Vec<Former>> = Mutex::new(Vec::new());

/// The export list the prelinker wrote after the module table.
fn builtin_exports() -> Option<&'static ExportList<'static>> {
    BUILTIN_EXPORTS
        .call_once(|| {
            let area = crate::modules::image::modtable_area();
            let table = modtable::table::Table::parse(area).ok()?;
            let at = modtable::exports::offset_after(table.size());
            match ExportList::parse(area.get(at..)?) {
                Ok(l) => Some(l),
                Err(e) => {
                    log::warn!("loader: {e}: modules loaded later cannot use built-in exports");
                    None
                }
            }
        })
        .as_ref()
}

/// Name of a module loaded after boot, by owner index.
pub fn runtime_name(index: usize) -> Option<&'static str> {
    crate::arch::without_interrupts(|| {
        let names = NAMES.try_lock()?;
        names.iter().find(|(i, _)| *i == index).map(|(_, n)| *n)
    })
}

/// Records `name` for owner `index`, reusing the string of an earlier
/// module of that name (so reloading a module does not leak its name).
fn register_name(index: usize, name: &str) -> &'static str {
    crate::arch::without_interrupts(|| {
        let mut names = NAMES.lock();
        let s: &'static str = match names.iter().find(|(_, n)| *n == name) {
            Some(&(_, n)) => n,
            None => Box::leak(String::from(name).into_boxed_str()),
        };
        names.push((index, s));
        s
    })
}

/// Sets up the pools from the module phase's plans (the text and rodata
/// pools; fresh pages go above the kernel image). Called once, at the end
/// of the module phase.
pub fn init(plans: &PerClass<ClassPlan>) {
    let runtime_base = align_up(crate::layout::image().end, HUGE_PAGE_SIZE) + HUGE_PAGE_SIZE;
    let placer = Placer::new(
        plans[Class::Text].pool,
        plans[Class::Rodata].pool,
        runtime_base,
    );
    *LOADER.lock() = Some(Loader {
        mods: Vec::new(),
        totals: None,
        placer,
        mapped: PerClass(Class::ALL.map(|c| plans[c].mapped.clone())),
        refusals: Vec::new(),
    });
}

/// Takes over the built-in modules and the boot figures after the boot
/// report is printed.
pub fn adopt(mods: Vec<Module>, totals: Totals) {
    if let Some(l) = LOADER.lock().as_mut() {
        l.mods = mods;
        l.totals = Some(totals);
    }
}

/// Fills in the loader's part of a report being built (the boot report).
pub fn report_extra(r: &mut ::report::Report) {
    if let Some(l) = LOADER.lock().as_ref() {
        l.fill(r);
    }
}

/// Whether `addr` holds bytes of a module loaded after boot that is placed
/// and has not failed or been unloaded. Never waits for a lock.
pub fn is_live(addr: u64) -> bool {
    crate::arch::without_interrupts(|| {
        LIVE.try_lock()
            .is_some_and(|l| l.iter().any(|&(_, s, e)| addr >= s && addr < e))
    })
}

/// Called by the exception hook: if `addrs` (the instruction, the faulting
/// address) fall in bytes a module loaded after boot (or an unloaded
/// built-in) had, and no live module has now, names it on the console and
/// returns true. Allocates nothing and never waits for a lock.
pub fn explain_stale(vector: u64, addrs: [u64; 2]) -> bool {
    crate::arch::without_interrupts(|| {
        let Some(former) = FORMER.try_lock() else {
            return false;
        };
        for addr in addrs {
            if addr == 0 || is_live(addr) {
                continue;
            }
            let hit = former.iter().rev().find_map(|f| {
                f.ranges
                    .iter()
                    .find(|&&(s, e, _)| addr >= s && addr < e)
                    .map(|&(_, _, c)| (f, c))
            });
            if let Some((f, c)) = hit {
                let _ = writeln!(
                    crate::console::EmergencyWriter,
                    "STALE: {} at {addr:#x}: address in the {} of {} module {}",
                    guard::exception_name(vector),
                    c.name(),
                    f.how,
                    f.name
                );
                return true;
            }
        }
        false
    })
}

/// Loads `name` from the initrd (see the module docs) and prints the
/// `REPORT` line again.
pub fn insmod(name: &str) -> Result<(), LoadError> {
    let mut g = LOADER.lock();
    let l = g
        .as_mut()
        .ok_or(LoadError::Initrd(crate::initrd::InitrdError::Absent))?;
    let r = l.insmod(name);
    l.finish_op(name, r.as_ref().err());
    r.map(|_| ())
}

/// Unloads module `name` and prints the `REPORT` line again.
pub fn rmmod(name: &str) -> Result<ReleaseSummary, LoadError> {
    let mut g = LOADER.lock();
    let l = g.as_mut().ok_or_else(|| LoadError::NotLoaded {
        module: name.to_string(),
    })?;
    let r = l.rmmod(name);
    if let Err(e) = &r {
        log::error!("rmmod {name}: refused: {e}");
    }
    l.print_report();
    r
}

/// With `load=NAME[,NAME...]` on the command line: loads those objects
/// from the initrd at the end of boot, then prints one `REPORT` line.
pub fn load_from_cmdline() {
    let Some(list) = crate::cmdline::get("load") else {
        return;
    };
    let mut g = LOADER.lock();
    let Some(l) = g.as_mut() else {
        return;
    };
    for name in list.split(',').filter(|n| !n.is_empty()) {
        if let Err(e) = l.insmod(name) {
            l.refuse(name, &e);
        }
    }
    l.print_report();
}

/// Prints the report table and `REPORT` line of the current state.
pub fn print_report() {
    if let Some(l) = LOADER.lock().as_mut() {
        l.refresh();
        if let Some(t) = &l.totals {
            crate::modules::print_with(&l.mods, t, &|r| l.fill(r));
        }
    }
}

/// Calls the old probe address of module `name`, which was unloaded or
/// whose probe failed (a test aid: the call must trap, and the trap report
/// names the module). Returns only if it cannot or the call returns.
pub fn stale_call(name: &str) -> Result<(), String> {
    let (addr, how) = {
        let g = LOADER.lock();
        let l = g.as_ref().ok_or("the loader is not set up")?;
        let m = l
            .mods
            .iter()
            .rev()
            .find(|m| m.name == name)
            .ok_or_else(|| format!("no module {name}"))?;
        if m.kept {
            return Err(format!("module {name} is loaded: unload it first"));
        }
        let how = if m.unloaded.is_some() {
            "unloaded"
        } else {
            "expunged"
        };
        // A built-in that was unloaded lived at `base`; others were probed
        // at `slot` (which is `base` for modules loaded after boot).
        let at = if m.unloaded.is_some() { m.base } else { m.slot };
        let addr = at[Class::Text] + m.placement.probe_off as u64;
        if is_live(addr) {
            return Err(format!(
                "the old probe address {addr:#x} of {name} holds live code of another module now"
            ));
        }
        (addr, how)
    };
    crate::kprintln!("stale: calling the old probe address {addr:#x} of {how} module {name}");
    let r = crate::modules::stale::call_expecting_a_trap(addr);
    Err(format!("the call returned {r} instead of trapping"))
}

/// A read-only view of the loader's state, for the shell.
pub struct View<'a> {
    /// Every module: built-in ones first, then those loaded since.
    pub mods: &'a [Module],
    /// The boot figures.
    pub totals: &'a Totals,
    /// The pools and fresh pages.
    pub placer: &'a Placer,
    /// The ranges of each class range the module phase kept mapped.
    pub class_mapped: &'a PerClass<Vec<(u64, u64)>>,
}

/// Figures of one class's pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolFigures {
    /// Bytes managed.
    pub size: u64,
    /// Bytes in use by loaded modules.
    pub used: u64,
    /// Bytes free.
    pub free: u64,
}

impl View<'_> {
    /// The pool figures of class `c` (data: the heap tail plus fresh pages).
    pub fn pool(&self, c: Class) -> PoolFigures {
        let p = &self.placer.pools[c];
        let mut f = PoolFigures {
            size: p.size(),
            used: p.used(),
            free: p.free_bytes(),
        };
        if c == Class::Data
            && let Some((s, e, used, free)) = crate::mm::heap::arena()
        {
            f.size += e - s;
            f.used += used as u64;
            f.free += free as u64;
        }
        f
    }

    /// The ranges mapped for class `c`: what the module phase kept mapped of
    /// the class range and the fresh pages taken since.
    pub fn mapped(&self, c: Class) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self.class_mapped[c].clone();
        v.extend(
            self.placer
                .fresh
                .iter()
                .filter(|f| f.class == c)
                .map(|f| (f.va, f.va + f.len)),
        );
        v
    }

    /// (4 KiB, 2 MiB) mappings over [`View::mapped`]`(c)`.
    pub fn mappings(&self, c: Class) -> (usize, usize) {
        mappings(&self.class_mapped[c], &self.placer.fresh, c)
    }

    /// Names of the kept modules that depend on module `i`.
    pub fn dependents(&self, i: usize) -> Vec<&'static str> {
        self.mods
            .iter()
            .filter(|m| m.kept && m.deps.contains(&i))
            .map(|m| m.name)
            .collect()
    }
}

/// Runs `f` on the loader's state (`None` before the module phase ends).
pub fn with_view<R>(f: impl FnOnce(&View<'_>) -> R) -> Option<R> {
    let g = LOADER.lock();
    let l = g.as_ref()?;
    let totals = l.totals.as_ref()?;
    Some(f(&View {
        mods: &l.mods,
        totals,
        placer: &l.placer,
        class_mapped: &l.mapped,
    }))
}

/// (4 KiB, 2 MiB) mappings over `mapped` and class `c`'s fresh pages.
fn mappings(mapped: &[(u64, u64)], fresh: &[Fresh], c: Class) -> (usize, usize) {
    mapped
        .iter()
        .copied()
        .chain(
            fresh
                .iter()
                .filter(|f| f.class == c)
                .map(|f| (f.va, f.va + f.len)),
        )
        .fold((0, 0), |a, (s, e)| {
            let (k, m) = paging::count_mappings(s, e - s);
            (a.0 + k, a.1 + m)
        })
}

impl Loader {
    fn budget_ms(&self) -> u64 {
        self.totals.as_ref().map_or(100, |t| t.budget_ms)
    }

    /// The kept module called `name`.
    fn kept(&self, name: &str) -> Option<usize> {
        self.mods.iter().rposition(|m| m.kept && m.name == name)
    }

    /// `deps` and everything they depend on, transitively.
    fn closure(&self, deps: &[usize]) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let mut todo: Vec<usize> = deps.to_vec();
        while let Some(d) = todo.pop() {
            if !out.contains(&d) {
                out.push(d);
                todo.extend(self.mods[d].deps.iter().copied());
            }
        }
        out
    }

    /// Who exports `name` now ("the kernel" or a kept module's index), its
    /// address, and the hash of the signature the exporter records (0:
    /// unchecked or none recorded).
    fn exporter(&self, name: &str) -> Option<(Option<usize>, u64, u64)> {
        if let Some(e) = crate::exports::find_export(name) {
            return Some((None, e.addr(), e.sig_hash));
        }
        if let Some(e) = builtin_exports().and_then(|l| l.find(name)) {
            let i = e.module as usize;
            if let Some(m) = self.mods.get(i).filter(|m| m.kept) {
                return Some((Some(i), m.base[e.class] + e.offset as u64, e.sig_hash));
            }
        }
        self.mods
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kept)
            .find_map(|(i, m)| {
                let rt = m.runtime.as_ref()?;
                rt.exports
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|&(_, a, h)| (Some(i), a, h))
            })
    }

    /// Checks that `object` imports `name` with the signature its exporter
    /// records (hash `have`, 0 meaning unchecked), from `sigs`.
    fn check_signature(
        &self,
        object: &str,
        sigs: &[(&str, &str)],
        name: &str,
        exporter: Option<usize>,
        have: u64,
    ) -> Result<(), LoadError> {
        use modabi::{service_signature, signature_hash};
        if have == 0 {
            return Ok(());
        }
        let want = sigs.iter().find(|(n, _)| *n == name).map(|&(_, s)| s);
        if want.is_some_and(|w| signature_hash(w) == have) {
            return Ok(());
        }
        let who = match exporter {
            None => String::from("the kernel"),
            Some(i) => format!("module {}", self.mods[i].name),
        };
        let have = match (exporter, service_signature(name)) {
            (None, Some(t)) if signature_hash(t) == have => format!("{who} exports `{t}`"),
            _ => format!("{who} exports it with signature hash {have:#018x}"),
        };
        Err(LoadError::SignatureMismatch {
            object: object.to_string(),
            symbol: name.to_string(),
            want: want.map_or_else(
                || String::from("(no signature recorded)"),
                |w| format!("`{w}`"),
            ),
            have,
        })
    }

    fn resolve(
        &self,
        object: &str,
        closure: &[usize],
        sigs: &[(&str, &str)],
        name: &str,
        weak: bool,
    ) -> Result<u64, LoadError> {
        if let Some((who, _, have)) = self.exporter(name) {
            self.check_signature(object, sigs, name, who, have)?;
        }
        match self.exporter(name).map(|(w, a, _)| (w, a)) {
            Some((None, a)) => Ok(a),
            Some((Some(i), a)) if closure.contains(&i) => Ok(a),
            Some((Some(i), _)) => Err(LoadError::UndeclaredDependency {
                object: object.to_string(),
                symbol: name.to_string(),
                exporter: self.mods[i].name.to_string(),
            }),
            None if weak => Ok(0),
            None => Err(LoadError::UndefinedSymbol {
                object: object.to_string(),
                symbol: name.to_string(),
            }),
        }
    }

    fn unplace(&mut self, placed: &PerClass<Option<Placement>>) {
        for c in Class::ALL {
            if let Some(p) = placed[c]
                && let Err(e) = self.placer.release(c, &p)
            {
                log::error!(
                    "loader: cannot give back {} at {:#x}: {e}",
                    c.name(),
                    p.addr
                );
            }
        }
        self.placer.give_back_unused_fresh();
    }

    fn insmod(&mut self, object: &str) -> Result<usize, LoadError> {
        if self.totals.is_none() {
            return Err(LoadError::Initrd(crate::initrd::InitrdError::Absent));
        }
        let archive = crate::initrd::archive().map_err(LoadError::Initrd)?;
        let entry = archive.find(object).ok_or_else(|| LoadError::NotInInitrd {
            name: object.to_string(),
            available: archive
                .entries()
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let t0 = tsc::read();
        let obj = elf::parse(entry.name, entry.data)?;
        let file = obj.file;
        let name = obj.info.name;
        if self.kept(name).is_some() {
            return Err(LoadError::AlreadyLoaded {
                object: file.to_string(),
                module: name.to_string(),
            });
        }
        let mut deps = Vec::new();
        for d in &obj.info.depends {
            deps.push(self.kept(d).ok_or_else(|| LoadError::MissingDependency {
                object: file.to_string(),
                module: name.to_string(),
                dependency: d.to_string(),
            })?);
        }
        let closure = self.closure(&deps);
        for e in &obj.info.exports {
            if let Some((who, _, _)) = self.exporter(e) {
                return Err(LoadError::ExportClash {
                    object: file.to_string(),
                    symbol: e.to_string(),
                    owner: who.map_or_else(
                        || String::from("the kernel"),
                        |i| format!("module {}", self.mods[i].name),
                    ),
                });
            }
        }
        let layout = relocate::layout(&obj);
        let mut placed: PerClass<Option<Placement>> = PerClass([None; 3]);
        for c in Class::ALL {
            if layout.size[c] == 0 {
                continue;
            }
            match self.placer.place(c, layout.size[c], layout.align[c]) {
                Ok(p) => placed[c] = Some(p),
                Err(e) => {
                    self.unplace(&placed);
                    return Err(LoadError::NoMemory {
                        object: file.to_string(),
                        what: format!("{} bytes of {}: {e}", layout.size[c], c.name()),
                    });
                }
            }
        }
        let base = PerClass(Class::ALL.map(|c| placed[c].map_or(0, |p| p.addr)));
        let linked = {
            let me = &*self;
            let sigs = &obj.info.import_sigs;
            let mut resolve = |sym: &str, weak: bool| me.resolve(file, &closure, sigs, sym, weak);
            relocate::link(&obj, &layout, &base, &mut resolve)
        };
        let exports: Result<Vec<(String, u64, u64)>, LoadError> = obj
            .info
            .exports
            .iter()
            .map(|e| {
                let sig = obj.info.export_sig(e).map_or(0, modabi::signature_hash);
                relocate::export_address(&obj, &layout, &base, e)
                    .map(|a| (e.to_string(), a, sig))
                    .ok_or_else(|| LoadError::Modinfo {
                        object: file.to_string(),
                        what: format!("exports `{e}`, which it does not define"),
                    })
            })
            .collect();
        let (linked, exports) = match (linked, exports) {
            (Ok(l), Ok(x)) => (l, x),
            (Err(e), _) | (_, Err(e)) => {
                self.unplace(&placed);
                return Err(e);
            }
        };
        for c in Class::ALL {
            if let Some(p) = placed[c]
                && let Err(e) = place::write(c, p.addr, &linked.image[c])
            {
                self.unplace(&placed);
                return Err(LoadError::NoMemory {
                    object: file.to_string(),
                    what: e,
                });
            }
        }
        crate::arch::serialize();
        let load_ns = tsc::ticks_to_ns(tsc::read() - t0);
        let index = self.new_owner();
        let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let placement = modtable::table::Placement {
            slot_off: PerClass([0; 3]),
            slot_size: PerClass(Class::ALL.map(|c| u32_of(placed[c].map_or(0, |p| p.taken)))),
            size: layout.size.map(u32_of),
            align: layout.align.map(u32_of),
            bss_size: u32_of(layout.bss_size),
            probe_off: u32_of(relocate::entry_offset(&obj, &layout, obj.probe)),
            selftest_off: obj
                .selftest
                .map(|s| u32_of(relocate::entry_offset(&obj, &layout, s))),
            // Modules loaded after boot get no per-CPU copies.
            percpu_off: 0,
            percpu_size: 0,
            checksum: modtable::checksum::module_checksum([
                &linked.image[Class::Text][..],
                &linked.image[Class::Rodata][..],
                &linked.image[Class::Data][..],
            ]),
            predicted: None,
        };
        let name = register_name(index, name);
        log::info!(
            "insmod {object}: module {name}: text {:#x}+{}, rodata {:#x}+{}, data {:#x}+{} ({}); {} relocations, {} GOT entries, {} us",
            base[Class::Text],
            layout.size[Class::Text],
            base[Class::Rodata],
            layout.size[Class::Rodata],
            base[Class::Data],
            layout.size[Class::Data],
            Class::ALL
                .iter()
                .filter_map(|&c| placed[c].map(|p| format!("{} in {}", c.name(), p.at.name())))
                .collect::<Vec<_>>()
                .join(", "),
            linked.relocs,
            layout.got.len(),
            load_ns / 1000
        );
        self.mods.push(Module {
            runtime: Some(Box::new(Runtime {
                object: object.to_string(),
                load_ns,
                relocs: linked.relocs,
                got_entries: layout.got.len() as u32,
                placed,
                exports,
            })),
            ..Module::new(name, placement, deps, base)
        });
        drop(linked);
        crate::arch::without_interrupts(|| {
            let mut live = LIVE.lock();
            for p in placed.0.iter().flatten() {
                live.push((index, p.addr, p.addr + p.len));
            }
        });
        self.probe(index);
        Ok(index)
    }

    /// A fresh owner index for the services' resource records: the index
    /// the module gets in `mods`.
    fn new_owner(&mut self) -> usize {
        let index = self.mods.len();
        crate::arch::without_interrupts(|| {
            let mut t = crate::kapi::resources::TABLE.lock();
            t.resize_with(index + 1, Default::default);
        });
        index
    }

    /// Probes module `index` (just loaded) at its address; keeps it and
    /// runs its self-test, or releases it and gives its bytes back.
    fn probe(&mut self, index: usize) {
        let budget = self.budget_ms();
        let entry =
            self.mods[index].base[Class::Text] + self.mods[index].placement.probe_off as u64;
        let before = Resources::now();
        let t = tsc::read();
        let outcome = call::guarded(index, entry, budget);
        self.mods[index].probe_ns = tsc::ticks_to_ns(tsc::read() - t);
        if matches!(outcome, Outcome::Returned(0)) {
            let m = &mut self.mods[index];
            m.kept = true;
            log::info!("module {}: kept ({} us)", m.name, m.probe_ns / 1000);
            if let Some(selftest_off) = m.placement.selftest_off {
                let entry = m.base[Class::Text] + selftest_off as u64;
                let result = match call::guarded(index, entry, budget) {
                    Outcome::Returned(0) => Ok(()),
                    Outcome::Returned(code) => Err(match guard::take_failure() {
                        Some((_, msg)) => msg.as_str().to_string(),
                        None => format!("returned {code}"),
                    }),
                    Outcome::Aborted(a) => Err(a.to_string()),
                };
                let m = &mut self.mods[index];
                match &result {
                    Ok(()) => log::info!("module {}: selftest passed at its pool address", m.name),
                    Err(e) => log::error!("module {}: selftest failed: {e}", m.name),
                }
                m.selftest = Some(result);
            }
            return;
        }
        let failure = guard::take_failure();
        let released = crate::kapi::release(index);
        let after = Resources::now();
        let reason = Reason::of_probe(outcome, failure);
        let placed = self.mods[index]
            .runtime
            .as_ref()
            .map_or(PerClass([None; 3]), |rt| rt.placed);
        self.unplace(&placed);
        self.remember(index, "expunged");
        let m = &mut self.mods[index];
        m.released = Some(released);
        m.leak = Some(before.leak_to(after));
        log::warn!(
            "module {}: expunged: {reason}; its bytes went back to the pools poisoned",
            m.name
        );
        m.expunged = Some(reason);
    }

    /// Remembers where module `index` was, for stale-call explanations;
    /// its bytes are no longer live.
    fn remember(&mut self, index: usize, how: &'static str) {
        let m = &self.mods[index];
        let ranges = Class::ALL
            .iter()
            .filter(|&&c| m.placement.size[c] > 0)
            .map(|&c| (m.base[c], m.base[c] + m.placement.size[c] as u64, c))
            .collect();
        let former = Former {
            name: m.name,
            how,
            ranges,
        };
        crate::arch::without_interrupts(|| {
            LIVE.lock().retain(|&(i, _, _)| i != index);
            FORMER.lock().push(former);
        });
    }

    fn rmmod(&mut self, name: &str) -> Result<ReleaseSummary, LoadError> {
        let index = self.kept(name).ok_or_else(|| LoadError::NotLoaded {
            module: name.to_string(),
        })?;
        let dependents: Vec<&str> = self
            .mods
            .iter()
            .filter(|m| m.kept && m.deps.contains(&index))
            .map(|m| m.name)
            .collect();
        if !dependents.is_empty() {
            return Err(LoadError::InUse {
                module: name.to_string(),
                dependents: dependents.join(", "),
            });
        }
        // Handlers first: nothing may call into the module any more.
        let released = crate::kapi::release(index);
        let m = &self.mods[index];
        match &m.runtime {
            Some(rt) => {
                let placed = rt.placed;
                self.unplace(&placed);
            }
            None => {
                let (base, size) = (m.base, m.placement.size);
                for c in Class::ALL {
                    if size[c] > 0
                        && let Err(e) = self.placer.adopt_builtin(c, base[c], size[c] as u64)
                    {
                        log::error!("rmmod {name}: {} bytes: {e}", c.name());
                    }
                }
            }
        }
        crate::arch::serialize();
        self.remember(index, "unloaded");
        let m = &mut self.mods[index];
        m.kept = false;
        m.unloaded = Some(released);
        m.released = Some(released);
        log::info!(
            "rmmod {name}: unloaded; released {} IRQ handlers, {} port ranges, {} MMIO ranges, {} allocations ({} bytes), {} devices{}; bytes poisoned and returned",
            released.irqs,
            released.ports,
            released.mmio,
            released.allocs,
            released.alloc_bytes,
            released.devices,
            if released.console {
                ", the console"
            } else {
                ""
            }
        );
        Ok(released)
    }

    fn refuse(&mut self, object: &str, e: &LoadError) {
        log::error!("insmod {object}: refused: {e}");
        self.refusals.push(Refusal {
            object: object.to_string(),
            kind: e.kind(),
            error: format!("{e}"),
        });
    }

    fn finish_op(&mut self, object: &str, err: Option<&LoadError>) {
        if let Some(e) = err {
            self.refuse(object, e);
        }
        self.print_report();
    }
}
