//! The module API, kernel side: the `extern "C"` services listed in
//! `modabi`, exported to modules through the `.kexports` table.
//!
//! Every acquisition (ports, MMIO, memory, IRQ handlers, the console, device
//! names) is recorded against the module that is running ([`owner`]) in
//! [`resources`], so a failed probe can be undone with [`release`].
//!
//! Every service body runs inside [`service`] and returns
//! `Result<_, Abort>`: a module that breaks a service's rules, passes memory
//! the service cannot read, or runs out of time while a service waits gets
//! an error, never an escape from inside the service. [`service`] turns the
//! error into the end of the module's guarded call
//! ([`crate::modules::guard::escape`]) after the body has returned and
//! dropped its locks and locals. Memory a module passes in is read and
//! written only through [`buffer`], with a length limit and a copy that
//! survives bad addresses.
//!
//! The services are policy: what a module may ask for, and the error it
//! gets when it may not. The registries of claimed ports and device memory,
//! and the accesses they allow, are [`crate::hw`]'s.
//!
//! Locks that IRQ handlers of modules may also take (through services) are
//! taken with interrupts disabled ([`crate::arch::locked`]), so a handler never spins on
//! a lock the code it interrupted holds.

// No unsafe code: the hardware behind the services is reached through
// `crate::hw` (ports, device memory, firmware tables), module buffers
// through `crate::mm::module_mem`, and heap memory handed out by address is
// `mm::heap::Block`s, freed by dropping them. (`export_symbol!` allows
// the one `link_section` of each export record.)
#![deny(unsafe_code)]
// `Abort` carries its message inline (it is also built in exception hooks,
// where nothing may allocate), so it is large; services return it only when
// a module's call ends, so the size costs nothing on the normal path.
#![allow(clippy::result_large_err)]

pub mod acpi;
mod buffer;
mod console;
mod device;
pub mod irq;
mod log;
mod memory;
mod mmio;
mod pci;
pub mod percpu;
mod ports;
mod probe;
pub mod resources;
mod time;

use crate::arch::locked;
use crate::modules::guard::{self, Abort};
use core::sync::atomic::{AtomicUsize, Ordering};

pub use console::module_console_active;
// The services, for the signature check in `crate::exports`.
pub use acpi::kapi_acpi_table;
pub use console::kapi_console_register;
pub use device::kapi_device_register;
pub use irq::kapi_irq_register;
pub use log::kapi_log;
pub use memory::{kapi_alloc, kapi_free};
pub use mmio::{kapi_mmio_map, kapi_mmio_read, kapi_mmio_write};
pub use pci::{kapi_pci_read, kapi_pci_write};
pub use percpu::{kapi_percpu_check, kapi_percpu_cpus, kapi_percpu_ptr};
pub use ports::{kapi_port_claim, kapi_port_in, kapi_port_out};
pub use probe::{kapi_panic, kapi_probe_fail};
pub use resources::{ReleaseSummary, release};
pub use time::{kapi_delay_us, kapi_time_ns};

/// Number of IRQ lines with a module handler (for leak checks).
pub fn registered_irqs() -> usize {
    irq::registered()
}

/// Owner value meaning "the kernel itself" (no module is running).
pub const KERNEL: usize = crate::hw::KERNEL;

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

/// Makes `module` the running module and returns the previous one (the
/// guard sets it around every call into module code).
pub fn set_owner(module: usize) -> usize {
    current().swap(module, Ordering::SeqCst)
}

/// Runs `f` with `module` as the running module, restoring the previous
/// owner afterwards.
pub fn run_as<R>(module: usize, f: impl FnOnce() -> R) -> R {
    let prev = set_owner(module);
    let r = f();
    set_owner(prev);
    r
}

/// Runs the body `f` of service `name`: its value, or, if it failed (or a
/// time-out fell due while it ran), the end of the calling module's guarded
/// call, once `f` and everything it held are gone. `R: Copy`, so nothing
/// with a destructor is alive when that happens.
pub fn service<R: Copy>(name: &'static str, f: impl FnOnce() -> Result<R, Abort>) -> R {
    guard::enter_service(name);
    let r = f();
    let due = guard::leave_service();
    match (r, due) {
        (Ok(v), None) => v,
        (Err(a), _) | (Ok(_), Some(a)) => guard::escape(a),
    }
}

/// Sets up what the services need before the first probe.
pub fn init() {
    crate::hw::ports::init();
    crate::hw::mmio::init();
    acpi::init();
}
