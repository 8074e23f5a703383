//! Interrupt handlers.

use crate::error::{ProbeError, status};
use crate::sys;

/// An interrupt handler; registered by reference to a `'static` value.
pub trait IrqHandler: Sync + 'static {
    /// Called with interrupts off when the line fires (on CPU 0, where the
    /// PICs deliver it), or on any CPU when the shell's `irq LINE CPU`
    /// runs it there; never on two CPUs at once.
    fn handle(&self);
}

extern "C" fn shim<H: IrqHandler>(data: usize) {
    // SAFETY: `data` is the address of the `&'static H` passed to `register`
    // for exactly this instantiation of the shim; it lives forever and `H:
    // Sync` allows shared use from interrupt context.
    let h = unsafe { &*(data as *const H) };
    h.handle();
}

/// Registers `handler` for legacy IRQ line `irq`.
pub fn register<H: IrqHandler>(irq: u8, handler: &'static H) -> Result<(), ProbeError> {
    let data = handler as *const H as usize;
    // SAFETY: the kernel calls `shim::<H>` with `data`, which the shim turns
    // back into the `&'static H` it came from.
    let raw = unsafe { sys::kapi_irq_register(irq.into(), shim::<H>, data) };
    status(raw).map_err(|s| {
        ProbeError::from_status(s, format_args!("cannot register IRQ {irq} handler: {s:?}"))
    })
}
