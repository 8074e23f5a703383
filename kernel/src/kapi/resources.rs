//! Per-module record of everything acquired through the services, and its
//! release when a probe fails (like Linux's managed device resources).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use spin::Mutex;

/// What one module holds.
#[derive(Default)]
pub struct Resources {
    /// Claimed I/O port ranges `(base, count)`.
    pub ports: Vec<(u16, u16)>,
    /// Claimed MMIO ranges `(phys, len)`.
    pub mmio: Vec<(u64, u64)>,
    /// Live allocations, by address (freed when dropped).
    pub allocs: BTreeMap<usize, crate::mm::heap::Block>,
    /// IRQ lines with a handler of this module.
    pub irqs: Vec<u8>,
    /// Whether this module is the console.
    pub console: bool,
    /// Devices it announced.
    pub devices: Vec<String>,
}

/// Counts of what [`release`] gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReleaseSummary {
    /// Port ranges.
    pub ports: usize,
    /// MMIO ranges.
    pub mmio: usize,
    /// Allocations.
    pub allocs: usize,
    /// Bytes in those allocations.
    pub alloc_bytes: usize,
    /// IRQ handlers it removed (not one that a cut-off or a fault of the
    /// handler had removed already).
    pub irqs: usize,
    /// Whether it held the console.
    pub console: bool,
    /// Devices.
    pub devices: usize,
}

/// Resources of every module, indexed by table index.
pub static TABLE: Mutex<Vec<Resources>> = Mutex::new(Vec::new());

/// Prepares records for `n` modules (called once, before the first probe).
pub fn init_modules(n: usize) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut t = TABLE.lock();
        t.clear();
        t.resize_with(n, Resources::default);
    })
}

/// Runs `f` on the record of `module` (interrupts off: IRQ handlers of
/// modules may allocate).
pub fn with<R>(module: usize, f: impl FnOnce(&mut Resources) -> R) -> Option<R> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut t = TABLE.lock();
        t.get_mut(module).map(f)
    })
}

/// Releases everything `module` acquired: handlers first (so nothing calls
/// into it any more), then the console, ports, MMIO and memory.
pub fn release(module: usize) -> ReleaseSummary {
    let taken = with(module, core::mem::take).unwrap_or_default();
    let mut s = ReleaseSummary {
        ports: taken.ports.len(),
        mmio: taken.mmio.len(),
        allocs: taken.allocs.len(),
        alloc_bytes: taken.allocs.values().map(|b| b.layout().size()).sum(),
        irqs: 0,
        console: taken.console,
        devices: taken.devices.len(),
    };
    // Only handlers still installed count: one the NMI watchdog cut off,
    // or that faulted, was removed then, and its line masked.
    s.irqs = taken
        .irqs
        .iter()
        .filter(|&&irq| super::irq::remove(irq, module))
        .count();
    if taken.console {
        super::console::remove(module);
    }
    for &(base, count) in &taken.ports {
        crate::hw::ports::unclaim(base, count, module);
    }
    for &(phys, len) in &taken.mmio {
        crate::hw::mmio::unclaim(phys, len, module);
    }
    s.console = taken.console;
    // The allocations are freed with the record.
    drop(taken);
    s
}
