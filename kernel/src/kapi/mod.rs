//! The module API, kernel side: the `extern "C"` services listed in
//! `modtable::abi`, exported to modules through the `.kexports` table.
//!
//! Every acquisition (ports, MMIO, memory, IRQ handlers, the console, device
//! names) is recorded against the module that is running ([`owner`]) in
//! [`resources`], so a failed probe can be undone with [`release`].
//!
//! Services run "inside the kernel": [`service`] marks that, so that a probe
//! whose time budget runs out while it is inside a service is cut off when
//! the service returns, never while the kernel holds a lock for it.

pub mod acpi;
mod console;
mod device;
mod irq;
mod log;
mod memory;
mod mmio;
mod pci;
mod ports;
pub mod resources;
mod time;

use core::sync::atomic::{AtomicUsize, Ordering};

pub use console::module_console_active;
pub use resources::{ReleaseSummary, release};

/// Number of IRQ lines with a module handler (for leak checks).
pub fn registered_irqs() -> usize {
    irq::registered()
}

/// Owner value meaning "the kernel itself" (no module is running).
pub const KERNEL: usize = usize::MAX;

static CURRENT: AtomicUsize = AtomicUsize::new(KERNEL);

/// The calling CPU's record of the running module (each CPU runs its own
/// module code; before the per-CPU areas exist, one global record).
fn current() -> &'static AtomicUsize {
    crate::arch::percpu::current().map_or(&CURRENT, |c| &c.module_owner)
}

/// The module whose code is running on this CPU (its table index), or
/// [`KERNEL`].
pub fn owner() -> usize {
    current().load(Ordering::SeqCst)
}

/// Runs `f` with `module` as the running module, restoring the previous
/// owner afterwards. The kernel wraps every call into module code in this.
pub fn run_as<R>(module: usize, f: impl FnOnce() -> R) -> R {
    let cur = current();
    let prev = cur.swap(module, Ordering::SeqCst);
    let r = f();
    cur.store(prev, Ordering::SeqCst);
    r
}

/// Runs the body of a service: see the module documentation.
pub fn service<R>(f: impl FnOnce() -> R) -> R {
    crate::modules::guard::enter_service();
    let r = f();
    crate::modules::guard::leave_service();
    r
}

/// Builds a byte slice from a module-supplied pointer and length.
///
/// # Safety
/// `ptr` must be valid for `len` bytes for the duration of the call; the
/// module API's safe wrappers only ever pass Rust slices.
unsafe fn module_bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller (see above).
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

/// [`module_bytes`] for the probe-control services in `modules::guard`.
///
/// # Safety
/// As for `module_bytes`.
pub unsafe fn module_bytes_pub<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    // SAFETY: forwarded contract.
    unsafe { module_bytes(ptr, len) }
}

/// Sets up what the services need before the first probe.
pub fn init() {
    ports::init();
    mmio::init();
    acpi::init();
}
