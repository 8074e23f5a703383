//! Built-in modules at boot: move to the packing cursor, verify there,
//! relocate, probe under guard, keep or expunge; then remap the regions, give freed
//! frames back and print the reclaimed-memory report.
//!
//! - [`image`]: where the prelinker put the table and the regions;
//! - [`guard`]: fault-, panic- and time-guarded calls into module code;
//! - [`load`]: the probe loop (probe at the final address: docs/design.md,
//!   section 6), with no unsafe code;
//! - [`bytes`]: its unsafe seam: module bytes and calls into module entries;
//! - [`remap`]: mapping live bytes, freeing the rest, per reclaim policy;
//! - [`report`]: the console table and the `REPORT` JSON line;
//! - [`health`]: kept modules whose self-test failed or whose callbacks
//!   faulted later, which make the boot "degraded";
//! - [`stale`]: naming the module behind a stale call into freed code, and
//!   the one deliberate call into freed code (the stale-call test aids);
//! - [`debug`]: where kept modules live, published for a debugger.

// Unsafe code only in the documented seams: `guard::switch` (the jump into
// module code and back), `image` (views of module bytes), `bytes` (reading,
// moving and calling modules for the probe loop), `stale::call_expecting_a_trap` and
// `debug` (the record a debugger reads).
#![deny(unsafe_code)]

// The probe loop's unsafe seam: module bytes through `image`'s aliases and
// calls into module entries (through `guard::run`), for `load`, which has
// none of its own.
mod bytes;
pub mod debug;
pub mod guard;
pub mod health;
pub mod image;
mod load;
mod remap;
mod report;
pub mod stale;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use modtable::PerClass;
use modtable::table::Placement;
use reclaim::policy::Policy;
use spin::Once;

pub use load::boot;
pub use report::{json_with, print_with};
pub use stale::first_kept_text;

/// Why a module was expunged.
#[derive(Clone, Debug)]
pub enum Reason {
    /// Its bytes do not match the checksum the prelinker recorded.
    Checksum {
        /// Checksum in the table.
        stored: u64,
        /// Checksum of the bytes in the image.
        computed: u64,
    },
    /// A module it depends on was expunged.
    Dependency(String),
    /// Its relocations could not be redone at the new address.
    Relocation(String),
    /// The probe returned failure (kind name, module's message).
    Probe(&'static str, String),
    /// The probe was cut short (fault, panic, hang, violation).
    Aborted(&'static str, String),
}

impl Reason {
    /// Short kind for the report: `checksum`, `dependency`, `relocation`,
    /// a probe error kind, or `fault`/`panic`/`hung`/`violation`.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Checksum { .. } => "checksum",
            Reason::Dependency(_) => "dependency",
            Reason::Relocation(_) => "relocation",
            Reason::Probe(k, _) => k,
            Reason::Aborted(k, _) => k,
        }
    }

    /// Why a probe failed, from how it ended and the failure it reported
    /// (taken before any release, so that building the reason allocates
    /// only after the leak check).
    pub fn of_probe(outcome: guard::Outcome, failure: Option<(i32, guard::Msg)>) -> Reason {
        use alloc::string::ToString;
        match outcome {
            guard::Outcome::Returned(code) => match failure {
                Some((kind, msg)) => Reason::Probe(
                    modabi::ProbeErrorKind::from_i32(kind).map_or("failed", |k| k.name()),
                    msg.as_str().to_string(),
                ),
                None => Reason::Probe(
                    "failed",
                    alloc::format!("probe returned {code} without a reason"),
                ),
            },
            guard::Outcome::Aborted(a) => Reason::Aborted(a.kind(), a.to_string()),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Checksum { stored, computed } => {
                write!(
                    f,
                    "checksum mismatch: table {stored:#018x}, bytes {computed:#018x}"
                )
            }
            Reason::Dependency(d) => write!(f, "dependency {d} expunged"),
            Reason::Relocation(e) => write!(f, "relocation failed: {e}"),
            Reason::Probe(_, m) => f.write_str(m),
            Reason::Aborted(_, m) => f.write_str(m),
        }
    }
}

/// Resource deltas around a failed probe: the REPORT's type.
pub use ::report::Leak;

/// What a probe's release must give back, counted before the probe and
/// after the release: heap bytes in use, free frames, module IRQ handlers.
#[derive(Clone, Copy, Debug)]
pub struct Resources {
    heap_bytes: usize,
    free_frames: usize,
    irqs: usize,
}

impl Resources {
    /// The counts now.
    pub fn now() -> Resources {
        Resources {
            heap_bytes: crate::mm::heap::used_bytes(),
            free_frames: crate::mm::frames::free_frames() as usize,
            irqs: crate::kapi::registered_irqs(),
        }
    }

    /// What was not given back between `self` (before the probe) and
    /// `after` (after the release): all zero when the release was complete.
    pub fn leak_to(self, after: Resources) -> Leak {
        Leak {
            heap_bytes: after.heap_bytes as i64 - self.heap_bytes as i64,
            frames: self.free_frames as i64 - after.free_frames as i64,
            irqs: after.irqs as i64 - self.irqs as i64,
        }
    }
}

/// Everything the loader knows about one module.
pub struct Module {
    /// Name from the table.
    pub name: &'static str,
    /// Its slots, sizes, entry points, checksum and prediction (the table's
    /// record, or the runtime loader's for a module loaded after boot).
    pub placement: Placement,
    /// Indices of its dependencies.
    pub deps: Vec<usize>,
    /// Slot address of each class, as prelinked.
    pub slot: PerClass<u64>,
    /// Address of each class now (where it was probed, and lives if kept).
    pub base: PerClass<u64>,
    /// `None` while pending or kept; the reason once expunged.
    pub expunged: Option<Reason>,
    /// Whether the probe ran and returned success.
    pub kept: bool,
    /// Bytes moved to the packing cursors (0 if it stayed in its slot),
    /// whether or not it was probed there.
    pub bytes_moved: u64,
    /// Relocation records redone after moving.
    pub relocs_redone: u32,
    /// Probe time.
    pub probe_ns: u64,
    /// Time to verify its checksum (where it lies: after its move, under
    /// the compact policies).
    pub checksum_ns: u64,
    /// Time of the move alone (the copy to the packing cursor).
    pub copy_ns: u64,
    /// Time of the relocation redo alone.
    pub relocate_ns: u64,
    /// Time of a plain memmove of the same bytes (measured after boot).
    pub memmove_ns: u64,
    /// What was released after a failed probe.
    pub released: Option<crate::kapi::ReleaseSummary>,
    /// Per-CPU copy bytes freed (over all CPUs) after a failed probe.
    pub percpu_freed: u64,
    /// Resource deltas around a failed probe.
    pub leak: Option<Leak>,
    /// Self-test result of a kept module: `Some(Ok)`, `Some(Err(reason))`,
    /// or `None` if it has none.
    pub selftest: Option<Result<(), String>>,
    /// Its callbacks (IRQ handlers, console writes) that ended early.
    pub runtime_faults: Vec<health::RuntimeFault>,
    /// For a module loaded after boot ([`crate::loader`]): how.
    pub runtime: Option<alloc::boxed::Box<crate::loader::Runtime>>,
    /// What `rmmod` released, once the module was unloaded.
    pub unloaded: Option<crate::kapi::ReleaseSummary>,
}

impl Module {
    /// Move + relocate time (`copy_ns + relocate_ns`; the copy alone if it
    /// was expunged for its checksum after the move).
    pub fn move_ns(&self) -> u64 {
        self.copy_ns + self.relocate_ns
    }

    /// A module not probed yet, its classes at `slot` (where it is probed
    /// unless the loader moves it).
    pub fn new(
        name: &'static str,
        placement: Placement,
        deps: Vec<usize>,
        slot: PerClass<u64>,
    ) -> Module {
        Module {
            name,
            placement,
            deps,
            slot,
            base: slot,
            expunged: None,
            kept: false,
            bytes_moved: 0,
            relocs_redone: 0,
            probe_ns: 0,
            checksum_ns: 0,
            copy_ns: 0,
            relocate_ns: 0,
            memmove_ns: 0,
            released: None,
            leak: None,
            selftest: None,
            runtime_faults: Vec::new(),
            runtime: None,
            unloaded: None,
            percpu_freed: 0,
        }
    }
}

static NAMES: Once<Vec<&'static str>> = Once::new();

/// Name of module `index` for messages ("kernel" for the kernel itself).
pub fn name_of(index: usize) -> &'static str {
    NAMES
        .get()
        .and_then(|n| n.get(index).copied())
        .or_else(|| crate::loader::runtime_name(index))
        .unwrap_or("kernel")
}

/// Boot-wide figures of the loader.
pub struct Totals {
    /// Reclaim policy.
    pub policy: Policy,
    /// Probe time budget.
    pub budget_ms: u64,
    /// Mappings (4 KiB, 2 MiB) per class over the kernel's bytes and the
    /// modules' used slot bytes at boot.
    pub mappings_before: PerClass<(usize, usize)>,
    /// Mappings per class over the kernel's and kept modules' bytes after
    /// the module phase.
    pub mappings_after: PerClass<(usize, usize)>,
    /// Free frames just before the freed ranges were given back.
    pub free_frames_before: usize,
    /// Free frames just after.
    pub free_frames_after: usize,
    /// Free heap bytes before the data tail was given to the heap.
    pub heap_free_before: usize,
    /// Free heap bytes after.
    pub heap_free_after: usize,
    /// Writable-and-executable pages in the live page tables.
    pub wx_pages: usize,
    /// Frames writable in one mapping and executable or read-only in another.
    pub wx_alias_frames: u64,
    /// The per-class plans (mapped, freed, pool and heap ranges; accounting).
    pub plans: PerClass<reclaim::plan::ClassPlan>,
    /// TSC time from kernel entry to the start of the module loader.
    pub boot_to_modules_ns: u64,
    /// TSC time spent in the loader (probes, moves, remap, reclaim).
    pub modules_ns: u64,
    /// TSC time of the remap (mapping live bytes, freeing the rest).
    pub remap_ns: u64,
    /// Size of the slot region of each class.
    pub region_size: PerClass<u64>,
}
