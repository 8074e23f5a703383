//! The reclaimed-memory report: one set of types for the `REPORT` JSON line
//! the kernel prints after the module phase, and the one function that
//! renders it as the console table.
//!
//! The kernel fills a [`Report`] with what it measured and writes it with
//! `serde_json`; the prelinker (`prelinker report`), the boot tests and the
//! bench read the same line back into the same types ([`parse_line`],
//! [`find_in_log`]), so a field cannot be renamed on one side only.
//! `docs/design.md` defines every field. [`verdict`] is the boot's exit
//! status, the other thing the host reads of a boot.

#![no_std]

extern crate alloc;

pub mod verdict;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prefix of the report line on the console.
pub const LINE_PREFIX: &str = "REPORT ";

/// An address, written as a `"0x…"` string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Hex(pub u64);

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:#x}", self.0))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Hex, D::Error> {
        let s = String::deserialize(d)?;
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| serde::de::Error::custom(format!("address {s:?} lacks 0x")))?;
        u64::from_str_radix(digits, 16)
            .map(Hex)
            .map_err(|e| serde::de::Error::custom(format!("address {s:?}: {e}")))
    }
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// One value per permission class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classes<T> {
    /// Code (RX).
    pub text: T,
    /// Read-only data (R).
    pub rodata: T,
    /// Data and bss (RW).
    pub data: T,
}

/// The classes' field names, in class order (the JSON keys of a
/// [`Classes`]).
pub const CLASS_NAMES: [&str; 3] = ["text", "rodata", "data"];

impl<T> Classes<T> {
    /// Builds one from a function of the class index (0 text, 1 rodata, 2 data).
    pub fn from_fn(mut f: impl FnMut(usize) -> T) -> Classes<T> {
        Classes {
            text: f(0),
            rodata: f(1),
            data: f(2),
        }
    }

    /// The value of class `i` (0 text, 1 rodata, 2 data).
    pub fn get(&self, i: usize) -> &T {
        match i {
            0 => &self.text,
            1 => &self.rodata,
            _ => &self.data,
        }
    }

    /// `(name, value)` pairs in class order.
    pub fn iter(&self) -> [(&'static str, &T); 3] {
        [
            (CLASS_NAMES[0], &self.text),
            (CLASS_NAMES[1], &self.rodata),
            (CLASS_NAMES[2], &self.data),
        ]
    }
}

impl Classes<u64> {
    /// The sum over classes.
    pub fn total(&self) -> u64 {
        self.text + self.rodata + self.data
    }
}

/// Whether a module was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Its probe succeeded; it lives on.
    Kept,
    /// Dropped, its memory reclaimed.
    Expunged,
    /// Kept, then unloaded with `rmmod`.
    Unloaded,
}

impl Outcome {
    /// `kept`, `expunged` or `unloaded`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::Expunged => "expunged",
            Outcome::Unloaded => "unloaded",
        }
    }
}

/// Where one class of a module loaded after boot was placed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// Its address.
    pub addr: Hex,
    /// Bytes the class uses.
    pub bytes: u64,
    /// Bytes taken from the pool (rounded up to 64).
    pub taken: u64,
    /// Which pool or page it is in (`pool`, `heap tail`, `fresh page`, …).
    #[serde(rename = "in")]
    pub within: String,
}

/// What a failed probe's module had acquired and the kernel released.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// Port ranges.
    pub ports: u64,
    /// MMIO ranges.
    pub mmio: u64,
    /// Heap allocations.
    pub allocs: u64,
    /// Bytes of those allocations.
    pub alloc_bytes: u64,
    /// IRQ handlers still installed, which the release removed (a handler
    /// cut off or faulting was removed then, and is not counted here).
    pub irqs: u64,
    /// Whether it had taken the console.
    pub console: bool,
    /// Registered devices.
    pub devices: u64,
}

/// Resource deltas measured around a failed probe (all zero when the
/// release was complete).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    /// Heap bytes in use after release minus before the probe.
    pub heap_bytes: i64,
    /// Free frames before the probe minus after release.
    pub frames: i64,
    /// Module IRQ handlers after release minus before the probe.
    pub irqs: i64,
}

/// A callback of a kept module that ended early.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeFault {
    /// Which callback: `IRQ 6 handler`, `console write`.
    #[serde(rename = "where")]
    pub place: String,
    /// `fault`, `panic`, `hung` or `violation`.
    pub kind: String,
    /// What happened.
    pub reason: String,
    /// Where a CPU fault happened, as `module+offset` in live module text.
    pub at: Option<String>,
    /// The probe or self-test that was running then (`probe of NAME`).
    pub during: Option<String>,
    /// The CPU the callback ran on (0 in reports that predate the field).
    #[serde(default)]
    pub cpu: u64,
}

/// One module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// Name from the module table.
    pub name: String,
    /// Kept or expunged.
    pub result: Outcome,
    /// Why it was expunged.
    pub reason: Option<String>,
    /// Short kind of the reason (`no-device`, `fault`, `hung`, `dependency`, …).
    pub reason_kind: Option<String>,
    /// Names of its direct dependencies.
    pub depends: Vec<String>,
    /// Slot bytes per class, as prelinked.
    pub slot: Classes<u64>,
    /// Bytes the module uses per class (in-slot alignment and the GOT
    /// included, `.modinfo` not).
    pub used: Classes<u64>,
    /// Bytes it keeps after the module phase (`used` if kept, else 0).
    pub packed: Classes<u64>,
    /// What the prelinker's expectation predicted (`kept`, `expunged`), if any.
    pub predicted: Option<Outcome>,
    /// Bytes moved to the packing cursors (where it was then checked and,
    /// if its checksum matched, probed).
    pub bytes_moved: u64,
    /// Slot address per class, as prelinked.
    pub old_addr: Classes<Hex>,
    /// Where each class lives after the module phase (kept modules only).
    pub new_addr: Classes<Option<Hex>>,
    /// Relocated fields rewritten after moving.
    pub relocs_redone: u64,
    /// Probe time.
    pub probe_ns: u64,
    /// Move and relocate time (copy + relocate).
    pub move_ns: u64,
    /// Time of its checksum check.
    pub checksum_ns: u64,
    /// Time of the copy to the packing cursor.
    pub copy_ns: u64,
    /// Time of redoing its relocations.
    pub relocate_ns: u64,
    /// Time of a plain memmove of the same bytes (moved kept modules).
    pub memmove_ns: u64,
    /// Self-test result: `passed`, `failed`, or none (no self-test, or not kept).
    pub selftest: Option<String>,
    /// Why the self-test failed.
    pub selftest_error: Option<String>,
    /// Callbacks of this kept module (IRQ handlers, console writes) that
    /// faulted, panicked, hung or broke a rule after its probe.
    pub runtime_faults: Vec<RuntimeFault>,
    /// What was released after a failed probe.
    pub released: Option<Released>,
    /// Resource deltas around a failed probe.
    pub leak: Option<Leak>,
    /// Its per-CPU bytes on each CPU (its per-CPU template rounded up to
    /// 64 B; 0 for none), whatever its outcome: a kept module has that many
    /// on every CPU, an expunged one had them until its copies were freed.
    #[serde(default)]
    pub percpu: u64,
    /// `builtin` (prelinked) or `runtime` (loaded after boot with insmod or
    /// `load=`); absent in reports of kernels without the runtime loader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded: Option<String>,
    /// Whether its bytes went back to the pools, filled with int3 (after
    /// rmmod, or a failed probe of a runtime module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_returned: Option<bool>,
    /// A runtime module's object in the initrd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// A runtime module's load time (parse, place, relocate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_ns: Option<u64>,
    /// A runtime module's relocations applied by the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relocs_applied: Option<u64>,
    /// A runtime module's GOT entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub got_entries: Option<u64>,
    /// Where a runtime module's classes were placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed: Option<Classes<Option<Placed>>>,
}

/// The module phase split by step, summed over the modules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    /// Checksum checks.
    pub checksum_ns: u64,
    /// Copies to the packing cursors.
    pub copy_ns: u64,
    /// Relocations redone.
    pub relocate_ns: u64,
    /// Probes.
    pub probe_ns: u64,
    /// Remapping and reclaiming (once per boot).
    pub remap_ns: u64,
}

impl Phases {
    /// The steps' field names, in order (for readers that list the steps,
    /// such as the bench; a test checks them against the fields).
    pub const NAMES: [&'static str; 5] = [
        "checksum_ns",
        "copy_ns",
        "relocate_ns",
        "probe_ns",
        "remap_ns",
    ];
}

/// Totals of the prelinker's prediction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prediction {
    /// Modules the expectation said would be kept.
    pub expected_kept: u64,
    /// Modules whose outcome matched their prediction.
    pub as_expected: u64,
    /// Bytes moved, all modules.
    pub bytes_moved: u64,
    /// Relocated fields rewritten, all modules.
    pub relocs_redone: u64,
}

/// What became of one class's slot region and range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// Bytes of the slot region (range end minus the first slot).
    pub size: u64,
    /// End of the kernel's and kept modules' bytes.
    pub live_end: Hex,
    /// Bytes still mapped in the class range.
    pub mapped_bytes: u64,
    /// Bytes returned to general use (freed frames plus the heap tail).
    pub reclaimed_bytes: u64,
    /// Ranges still mapped.
    pub mapped: Vec<[Hex; 2]>,
    /// Ranges whose frames went to the frame allocator.
    pub freed: Vec<[Hex; 2]>,
    /// The trap-filled pool (text, rodata under compact).
    pub pool: Option<[Hex; 2]>,
    /// The tail given to the heap (data under compact).
    pub heap: Option<[Hex; 2]>,
}

/// Every byte of one class range; the seven parts add up to `size`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// The class range `[start, end)`.
    pub range: [Hex; 2],
    /// Bytes in the range.
    pub size: u64,
    /// The kernel's own bytes of the class.
    pub kernel: u64,
    /// Bytes kept modules use where they live.
    pub kept: u64,
    /// Bytes of expunged modules still mapped and not reused.
    pub failed: u64,
    /// Other mapped bytes nobody uses (alignment, slot padding, partly used pages).
    pub padding: u64,
    /// Bytes given back to the frame allocator.
    pub freed: u64,
    /// Trap-filled bytes kept for code loaded later.
    pub pool: u64,
    /// Bytes given to the kernel heap.
    pub heap: u64,
}

impl Accounting {
    /// The sum of the seven parts (equals `size` in a correct report).
    pub fn parts(&self) -> u64 {
        self.kernel + self.kept + self.failed + self.padding + self.freed + self.pool + self.heap
    }
}

/// A count of 4 KiB and 2 MiB mappings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// 4 KiB mappings.
    #[serde(rename = "4k")]
    pub k4: u64,
    /// 2 MiB mappings.
    #[serde(rename = "2m")]
    pub m2: u64,
}

/// Mappings over the kernel's and live module bytes: in total and per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mappings {
    /// 4 KiB mappings, all classes.
    #[serde(rename = "4k")]
    pub k4: u64,
    /// 2 MiB mappings, all classes.
    #[serde(rename = "2m")]
    pub m2: u64,
    /// Text.
    pub text: Count,
    /// Rodata.
    pub rodata: Count,
    /// Data.
    pub data: Count,
}

impl Mappings {
    /// From per-class counts, with the totals.
    pub fn from_classes(c: Classes<Count>) -> Mappings {
        Mappings {
            k4: c.text.k4 + c.rodata.k4 + c.data.k4,
            m2: c.text.m2 + c.rodata.m2 + c.data.m2,
            text: c.text,
            rodata: c.rodata,
            data: c.data,
        }
    }
}

/// Boot-cost figures of the kept modules that moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Kept modules that moved.
    pub moved_modules: u64,
    /// Their move + relocate time.
    pub move_relocate_ns: u64,
    /// A plain memmove of the same bytes.
    pub memmove_ns: u64,
    /// Their relocated fields rewritten.
    pub relocs_redone: u64,
    /// All probes.
    pub probe_ns: u64,
}

/// A CPU that was not started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotStarted {
    /// Its local APIC id.
    pub apic_id: u64,
    /// Why it did not start.
    pub reason: String,
}

/// The CPUs of the machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpus {
    /// CPUs the ACPI MADT lists as enabled (1 without an MADT).
    pub present: u64,
    /// CPUs running (the boot CPU included).
    pub started: u64,
    /// The running CPUs' local APIC ids, in CPU index order.
    pub apic_ids: Vec<u64>,
    /// The CPUs that did not answer, with why.
    pub not_started: Vec<NotStarted>,
}

/// The data tail the heap got, as a runtime pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapTail {
    /// Its range.
    pub range: [Hex; 2],
    /// Bytes allocated from it.
    pub used: u64,
    /// Bytes free in it.
    pub free: u64,
}

/// A class's pool for modules loaded after boot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Bytes in the pool (with fresh pages and, for data, the heap tail).
    pub size: u64,
    /// Bytes placed modules use.
    pub used: u64,
    /// Bytes free.
    pub free: u64,
    /// The largest free run.
    pub largest_free: u64,
    /// Fresh 2 MiB pages taken for the class.
    pub fresh_pages: u64,
    /// The heap tail (data only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_tail: Option<HeapTail>,
    /// Mappings over the pool.
    pub mappings: Count,
}

/// A fresh 2 MiB page the runtime loader took when a pool was full.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreshPage {
    /// Its class.
    pub class: String,
    /// Virtual address.
    pub addr: Hex,
    /// Physical address.
    pub phys: Hex,
    /// Size.
    pub size: u64,
    /// Its mapping's permissions.
    pub flags: String,
}

/// Counts of the runtime loader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeTotals {
    /// Runtime modules kept.
    pub loaded: u64,
    /// Runtime modules whose probe failed.
    pub expunged: u64,
    /// Modules unloaded with rmmod.
    pub unloaded: u64,
    /// Objects refused.
    pub refused: u64,
    /// Module IRQ handlers registered now.
    pub irq_handlers: u64,
    /// Free frames of the frame allocator now (4 KiB each).
    #[serde(default)]
    pub free_frames: u64,
}

/// An object the runtime loader refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Its name in the initrd.
    pub object: String,
    /// Why, in short (`truncated`, `machine`, `relocation`, `undefined`, …).
    pub kind: String,
    /// The error.
    pub error: String,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Reclaim policy.
    pub policy: String,
    /// Probe time budget.
    pub probe_budget_ms: u64,
    /// TSC frequency the times were converted with.
    pub tsc_hz: u64,
    /// Every module, in table (probe) order.
    pub modules: Vec<Module>,
    /// Kept modules.
    pub kept: u64,
    /// Expunged modules.
    pub expunged: u64,
    /// Bytes returned to general use: freed frames plus the heap tail.
    pub reclaimed_bytes: u64,
    /// Bytes given back to the frame allocator.
    pub freed_bytes: u64,
    /// Bytes kept as trap-filled pools.
    pub pool_bytes: u64,
    /// Bytes given to the heap.
    pub heap_bytes: u64,
    /// The prediction's totals.
    pub prediction: Prediction,
    /// Bytes kept modules use.
    pub packed_bytes: u64,
    /// Slot bytes of all modules.
    pub slot_bytes: u64,
    /// What a page-aligned (Linux-module style) layout of all modules takes.
    pub page_aligned_bytes: u64,
    /// The same, of the kept modules only.
    pub page_aligned_kept_bytes: u64,
    /// Per class: the slot region and what became of it.
    pub regions: Classes<Region>,
    /// Per class: every byte of the class range.
    pub accounting: Classes<Accounting>,
    /// Mappings over the kernel's and the modules' used slot bytes at boot.
    pub mappings_before: Mappings,
    /// Mappings over the kernel's and kept modules' bytes after the module phase.
    pub mappings_after: Mappings,
    /// Free frames just before the freed ranges were given back.
    pub free_frames_before: u64,
    /// Free frames just after.
    pub free_frames_after: u64,
    /// Free heap bytes before the data tail was given to the heap.
    pub heap_free_before: u64,
    /// Free heap bytes after.
    pub heap_free_after: u64,
    /// Writable and executable leaves in the live page tables.
    pub wx_pages: u64,
    /// Frames writable through one mapping and executable or read-only
    /// through another.
    pub wx_alias_frames: u64,
    /// The module that provides the console, if one does.
    pub console: Option<String>,
    /// Boot cost of moving.
    pub cost: Cost,
    /// The module phase by step.
    pub phases: Phases,
    /// Time from kernel entry to the module phase.
    pub boot_to_modules_ns: u64,
    /// Time of the module phase.
    pub modules_ns: u64,
    /// Time from kernel entry to the report.
    pub boot_ns: u64,
    /// `ok`, or `degraded` when a kept module failed its self-test or a
    /// callback of it faulted (the boot then exits with the degraded status).
    pub health: String,
    /// The kept modules that made the boot degraded.
    pub degraded: Vec<String>,
    /// The CPUs.
    pub cpus: Cpus,
    /// TLB shootdowns the module phase needed.
    pub tlb_shootdowns: u64,
    /// The pools for modules loaded after boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pools: Option<Classes<Pool>>,
    /// Fresh 2 MiB pages the runtime loader took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_pages: Option<Vec<FreshPage>>,
    /// Counts of the runtime loader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeTotals>,
    /// Objects the runtime loader refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusals: Option<Vec<Refusal>>,
    /// Per-CPU bytes: the kernel's and the kept modules'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percpu: Option<PerCpuBytes>,
    /// What fixed per-CPU reserves for modules would take on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percpu_compare: Option<PerCpuCompare>,
    /// The NMI watchdog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<Watchdog>,
}

/// The NMI watchdog, which cuts off module code that runs past its budget
/// with interrupts off (IRQ handlers, console writes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watchdog {
    /// Whether NMIs reach the CPUs.
    pub armed: bool,
    /// Why it is not armed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The global system interrupt the PIT's IRQ 0 arrives on (0 when not
    /// armed).
    pub gsi: u64,
    /// Indices of the CPUs its NMI reaches.
    pub cpus: Vec<u64>,
    /// Those of them past the eighth, which the I/O APIC cannot address in
    /// flat logical mode: CPU 0 forwards the NMIs it takes to one of them by
    /// NMI IPI while a callback there is due (and while arming).
    #[serde(default)]
    pub forwarded: Vec<u64>,
    /// Forwarded NMIs CPU 0's local APIC did not accept (0 on a healthy
    /// machine).
    #[serde(default)]
    pub forward_failures: u64,
    /// NMIs each running CPU took so far, keyed by CPU index.
    pub nmis: alloc::collections::BTreeMap<String, u64>,
    /// Module callbacks it cut off so far.
    pub cut_off: u64,
}

/// Per-CPU bytes of this boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerCpuBytes {
    /// The kernel's own part of each CPU's area (rounded up to 64 B).
    pub kernel_bytes: u64,
    /// The kept modules' per-CPU bytes on each CPU (each rounded up to 64 B).
    pub module_bytes: u64,
    /// `kernel_bytes + module_bytes`.
    pub per_cpu_area_bytes: u64,
    /// CPUs with per-CPU copies.
    pub cpus: u64,
    /// `cpus * per_cpu_area_bytes`.
    pub total_bytes: u64,
    /// The expunged modules' per-CPU bytes, freed on every CPU (their bytes
    /// per CPU times the CPUs, as actually given back).
    pub freed_bytes: u64,
}

/// Modules' per-CPU bytes on this machine: exactly what the kept modules
/// need against two fixed reserves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerCpuCompare {
    /// `module_bytes * cpus`: this kernel.
    pub exact_bytes: u64,
    /// A fixed 8 KiB per CPU for modules (today's Linux), times the CPUs.
    pub reserve_8k_bytes: u64,
    /// 32 KiB per CPU minus the kernel's own (the 2006 design), times the CPUs.
    pub reserve_32k_bytes: u64,
}

impl Module {
    /// A module `name` with outcome `result` and every figure zero or
    /// absent, to fill in.
    pub fn new(name: &str, result: Outcome) -> Module {
        Module {
            name: String::from(name),
            result,
            reason: None,
            reason_kind: None,
            depends: Vec::new(),
            slot: Classes::default(),
            used: Classes::default(),
            packed: Classes::default(),
            predicted: None,
            bytes_moved: 0,
            old_addr: Classes::default(),
            new_addr: Classes::default(),
            relocs_redone: 0,
            probe_ns: 0,
            move_ns: 0,
            checksum_ns: 0,
            copy_ns: 0,
            relocate_ns: 0,
            memmove_ns: 0,
            selftest: None,
            selftest_error: None,
            runtime_faults: Vec::new(),
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
        }
    }

    /// Why a kept module makes the boot degraded, if it does: its failed
    /// self-test and its callbacks' faults.
    pub fn problem(&self) -> Option<String> {
        if self.result != Outcome::Kept {
            return None;
        }
        let mut why: Vec<String> = Vec::new();
        if self.selftest.as_deref() == Some("failed") {
            why.push(format!(
                "selftest failed: {}",
                self.selftest_error.as_deref().unwrap_or("?")
            ));
        }
        for f in &self.runtime_faults {
            why.push(format!("{}: {}", f.place, f.reason));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

impl Report {
    /// The module named `name`.
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// Names of the modules with outcome `o`, sorted.
    pub fn names(&self, o: Outcome) -> Vec<String> {
        let mut v: Vec<String> = self
            .modules
            .iter()
            .filter(|m| m.result == o)
            .map(|m| m.name.clone())
            .collect();
        v.sort();
        v
    }

    /// The report as one line of JSON (without the prefix).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Why a report could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// No line starts with [`LINE_PREFIX`].
    NoReport,
    /// The line is not a report (bad JSON or a missing field).
    Bad(serde_json::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NoReport => write!(f, "no REPORT line"),
            ReadError::Bad(e) => write!(f, "the REPORT line is not a valid report: {e}"),
        }
    }
}

/// Parses the JSON of a report line (without the prefix).
pub fn parse_line(json: &str) -> Result<Report, ReadError> {
    serde_json::from_str(json).map_err(ReadError::Bad)
}

/// Finds the first report line of a boot log and parses it.
pub fn find_in_log(log: &str) -> Result<Report, ReadError> {
    let line = log
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(LINE_PREFIX))
        .ok_or(ReadError::NoReport)?;
    parse_line(line)
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        return String::from("n/a");
    }
    let x100 = (a as u128 * 100 / b as u128) as u64;
    format!("{}.{:02}", x100 / 100, x100 % 100)
}

/// The report as the console table: one row per module, then each class
/// range's accounting, what was reclaimed, the mappings and W^X, the
/// prediction and the boot cost. The kernel prints it and `prelinker
/// The module table's columns but the last (the reason, unpadded): width,
/// and whether left-aligned. The header and every row use them.
const COLUMNS: [(usize, bool); 13] = [
    (16, true),
    (8, true),
    (8, true),
    (15, false),
    (15, false),
    (15, false),
    (6, false),
    (19, false),
    (19, false),
    (6, false),
    (6, false),
    (9, false),
    (8, true),
];

/// One line of the module table: `cells` laid out by [`COLUMNS`], then
/// `reason`.
fn table_row(s: &mut String, cells: [String; 13], reason: &str) {
    for (c, &(w, left)) in cells.iter().zip(&COLUMNS) {
        let _ = if left {
            write!(s, "{c:<w$} ")
        } else {
            write!(s, "{c:>w$} ")
        };
    }
    let _ = writeln!(s, "{reason}");
}

/// report` prints it from a saved log: this is the one renderer.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Reclaimed-memory report (policy {})", r.policy);
    let header = [
        "module",
        "result",
        "expected",
        "text slot>pack",
        "rodata",
        "data",
        "percpu",
        "old text",
        "new text",
        "moved",
        "relocs",
        "probe us",
        "selftest",
    ];
    table_row(&mut s, header.map(String::from), "reason");
    for m in &r.modules {
        let cls = |slot: u64, packed: u64| format!("{slot}>{packed}");
        let new = m
            .new_addr
            .text
            .map_or_else(|| String::from("-"), |a| format!("{a}"));
        let selftest = match m.selftest.as_deref() {
            None => "-",
            Some("passed") => "ok",
            Some(_) => "FAIL",
        };
        let reason = m.reason.clone().or_else(|| m.problem()).unwrap_or_default();
        let cells = [
            m.name.clone(),
            m.result.name().into(),
            m.predicted.map_or("-", Outcome::name).into(),
            cls(m.slot.text, m.packed.text),
            cls(m.slot.rodata, m.packed.rodata),
            cls(m.slot.data, m.packed.data),
            m.percpu.to_string(),
            format!("{}", m.old_addr.text),
            new,
            m.bytes_moved.to_string(),
            m.relocs_redone.to_string(),
            (m.probe_ns / 1000).to_string(),
            selftest.into(),
        ];
        table_row(&mut s, cells, &reason);
    }
    for (name, a) in r.accounting.iter() {
        let _ = writeln!(
            s,
            "{name:<6} {}..{} {} bytes: kernel {}, kept {}, failed {}, padding {}, freed {}, pool {}, heap {}",
            a.range[0],
            a.range[1],
            a.size,
            a.kernel,
            a.kept,
            a.failed,
            a.padding,
            a.freed,
            a.pool,
            a.heap
        );
    }
    let _ = writeln!(
        s,
        "reclaimed {} bytes: freed {} to the frame allocator, {} to the heap; pools {} bytes; free frames {} -> {}, heap free {} -> {}",
        r.reclaimed_bytes,
        r.freed_bytes,
        r.heap_bytes,
        r.pool_bytes,
        r.free_frames_before,
        r.free_frames_after,
        r.heap_free_before,
        r.heap_free_after
    );
    // What the expunged modules held, from their rows: the class lines say
    // where those bytes are now (pools, heap, freed, or `failed` in place).
    let expunged = r.modules.iter().filter(|m| m.result == Outcome::Expunged);
    let (n, slots) = expunged.fold((0, Classes::<u64>::default()), |(n, c), m| {
        (
            n + 1,
            Classes {
                text: c.text + m.slot.text,
                rodata: c.rodata + m.slot.rodata,
                data: c.data + m.slot.data,
            },
        )
    });
    if n > 0 {
        let _ = writeln!(
            s,
            "modules expunged: {n}; their slots held text {}, rodata {}, data {} bytes (the class lines say where those bytes are now)",
            slots.text, slots.rodata, slots.data
        );
    }
    let _ = writeln!(
        s,
        "packed {} bytes of {} in slots; a page-aligned layout of the same modules takes {} bytes ({} for the kept ones)",
        r.packed_bytes, r.slot_bytes, r.page_aligned_bytes, r.page_aligned_kept_bytes
    );
    let (b, a) = (&r.mappings_before, &r.mappings_after);
    let _ = writeln!(
        s,
        "mappings over kernel + live module bytes: {}x4K+{}x2M before, {}x4K+{}x2M after; W+X pages {}, W^X alias frames {}",
        b.k4, b.m2, a.k4, a.m2, r.wx_pages, r.wx_alias_frames
    );
    if let Some(p) = &r.percpu {
        let _ = writeln!(
            s,
            "per-CPU: kernel {} + modules {} = {} bytes per CPU, {} CPUs, {} bytes; {} freed with expunged modules",
            p.kernel_bytes,
            p.module_bytes,
            p.per_cpu_area_bytes,
            p.cpus,
            p.total_bytes,
            p.freed_bytes
        );
    }
    if let Some(c) = &r.percpu_compare {
        let _ = writeln!(
            s,
            "per-CPU for modules: {} bytes exactly; a fixed 8 KiB per CPU takes {}, 32 KiB minus the kernel's own takes {}",
            c.exact_bytes, c.reserve_8k_bytes, c.reserve_32k_bytes
        );
    }
    if r.health != "ok" {
        let _ = writeln!(s, "health: {} ({})", r.health, r.degraded.join(", "));
    }
    let p = &r.prediction;
    let predicted = r.modules.iter().filter(|m| m.predicted.is_some()).count();
    let _ = writeln!(
        s,
        "prediction: {} of {} modules as expected; {} bytes moved, {} relocations redone",
        p.as_expected, predicted, p.bytes_moved, p.relocs_redone
    );
    let _ = writeln!(
        s,
        "cpus: {} of {} started (APIC ids {:?}); the module phase needed {} TLB shootdowns",
        r.cpus.started, r.cpus.present, r.cpus.apic_ids, r.tlb_shootdowns
    );
    if let Some(w) = &r.watchdog {
        let _ = match &w.reason {
            None => writeln!(
                s,
                "NMI watchdog: PIT on GSI {} to CPUs {:?}{}; NMIs {:?}; {} callbacks cut off",
                w.gsi,
                w.cpus,
                match (w.forwarded.is_empty(), w.forward_failures) {
                    (true, _) => String::new(),
                    (false, 0) => format!(" (CPUs {:?} by CPU 0's forwarding)", w.forwarded),
                    (false, n) => format!(
                        " (CPUs {:?} by CPU 0's forwarding, {n} forwards not accepted)",
                        w.forwarded
                    ),
                },
                w.nmis,
                w.cut_off
            ),
            Some(why) => writeln!(s, "NMI watchdog: not armed: {why}"),
        };
    }
    let k = &r.cost;
    let _ = writeln!(
        s,
        "boot cost (TSC time; under an emulator, emulator time): move+relocate {} us for {} moved modules, memmove of the same bytes {} us (ratio {}); {} relocations; probes {} us; module phase {} us = {}% of {} us boot",
        k.move_relocate_ns / 1000,
        k.moved_modules,
        k.memmove_ns / 1000,
        ratio(k.move_relocate_ns, k.memmove_ns),
        k.relocs_redone,
        k.probe_ns / 1000,
        r.modules_ns / 1000,
        ratio(r.modules_ns * 100, r.boot_ns),
        r.boot_ns / 1000
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_are_the_fields() {
        let v = serde_json::to_value(Classes::from_fn(|i| i as u64)).unwrap();
        for (i, n) in CLASS_NAMES.iter().enumerate() {
            assert_eq!(v[*n], i as u64, "{n}");
        }
        assert_eq!(v.as_object().unwrap().len(), 3);
    }

    #[test]
    fn phase_names_are_the_fields() {
        let v = serde_json::to_value(Phases::default()).unwrap();
        let keys: alloc::vec::Vec<&str> =
            v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut names = Phases::NAMES.to_vec();
        names.sort_unstable();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, names);
    }
    use alloc::vec;

    fn sample() -> Report {
        let m = Module {
            slot: Classes {
                text: 128,
                rodata: 0,
                data: 64,
            },
            used: Classes {
                text: 100,
                rodata: 0,
                data: 8,
            },
            packed: Classes {
                text: 100,
                rodata: 0,
                data: 8,
            },
            predicted: Some(Outcome::Kept),
            old_addr: Classes {
                text: Hex(0x1000),
                rodata: Hex(0x2000),
                data: Hex(0x3000),
            },
            new_addr: Classes {
                text: Some(Hex(0x1000)),
                rodata: Some(Hex(0x2000)),
                data: Some(Hex(0x3000)),
            },
            probe_ns: 5000,
            selftest: Some("passed".into()),
            ..Module::new("a", Outcome::Kept)
        };
        let mut b = Module {
            name: "b<x>".into(),
            result: Outcome::Expunged,
            reason: Some("no device".into()),
            reason_kind: Some("no-device".into()),
            predicted: None,
            new_addr: Classes::default(),
            ..m.clone()
        };
        b.leak = Some(Leak::default());
        Report {
            policy: "compact".into(),
            modules: vec![m, b],
            kept: 1,
            expunged: 1,
            ..Report::default()
        }
    }

    #[test]
    fn round_trips_through_json_with_the_documented_names() {
        let r = sample();
        let j = r.to_json();
        for key in [
            "\"policy\":\"compact\"",
            "\"result\":\"kept\"",
            "\"result\":\"expunged\"",
            "\"predicted\":\"kept\"",
            "\"old_addr\":{\"text\":\"0x1000\"",
            "\"mappings_after\":{\"4k\":0,\"2m\":0,\"text\":{\"4k\":0",
            "\"wx_alias_frames\":0",
        ] {
            assert!(j.contains(key), "{key} missing from {j}");
        }
        let log = format!("noise\nREPORT {j}\nmore\n");
        assert_eq!(find_in_log(&log).unwrap(), r);
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(matches!(find_in_log("nothing"), Err(ReadError::NoReport)));
        assert!(matches!(parse_line("{oops"), Err(ReadError::Bad(_))));
        assert!(matches!(parse_line("{}"), Err(ReadError::Bad(_))));
        let j = sample().to_json().replace("\"0x1000\"", "\"1000\"");
        assert!(matches!(parse_line(&j), Err(ReadError::Bad(_))));
    }

    #[test]
    fn renders_rows_and_totals() {
        let t = render(&sample());
        assert!(
            t.contains("b<x>") && t.contains("no device") && t.contains("128>100"),
            "{t}"
        );
        assert!(t.contains("prediction: 0 of 1 modules as expected"), "{t}");
        let expunged: Vec<_> = sample()
            .modules
            .iter()
            .filter(|m| m.result == Outcome::Expunged)
            .map(|m| m.slot)
            .collect();
        assert_eq!(expunged.len(), 1);
        let want = format!(
            "modules expunged: 1; their slots held text {}, rodata {}, data {} bytes",
            expunged[0].text, expunged[0].rodata, expunged[0].data
        );
        assert!(t.contains(&want), "{want} in\n{t}");
    }
}
