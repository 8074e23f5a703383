//! Test module `fault_irq_raise`: during its probe, IRQ 6 fires while
//! `fault_irq_owner`'s (faulting) handler holds the line. The probe:
//!
//! 1. resets the floppy controller (digital output register, port 0x3f2),
//!    which raises IRQ 6: the owner's handler faults, and the kernel must
//!    blame the owner, not this probe;
//! 2. registers its own IRQ 6 handler, which works only if the kernel
//!    removed the faulted one;
//! 3. resets the controller again and waits for its handler: the interrupt
//!    arrives only if the kernel acknowledged the first one (a missing EOI
//!    leaves IRQ 6 in service at the PIC, blocking the line).
//!
//! It is kept if all of that holds, and fails naming the step otherwise.

#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};
use module_api::irq::{self, IrqHandler};
use module_api::ports::{PortIo, Ports};
use module_api::time::{self, KernelClock};
use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_irq_raise",
    probe: probe,
}

/// The floppy controller's IRQ line.
const IRQ: u8 = 6;
/// Digital output register of the primary floppy controller.
const DOR: u16 = 0x3f2;
/// DOR: controller out of reset, DMA and interrupts enabled.
const DOR_RUN: u8 = 0x0c;

struct Counter(AtomicU32);

impl IrqHandler for Counter {
    fn handle(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

static SEEN: Counter = Counter(AtomicU32::new(0));

/// A reset of the controller: it interrupts when it leaves reset.
fn reset(dor: &Ports) {
    dor.write8(0, 0);
    time::delay_us(10);
    dor.write8(0, DOR_RUN);
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let dor = Ports::claim(DOR, 1)?;
    info!("fault_irq_raise: resetting the floppy controller (IRQ 6)");
    reset(&dor);
    time::delay_us(2000);
    irq::register(IRQ, &SEEN).map_err(|e| {
        ProbeError::busy(format_args!(
            "IRQ {IRQ} still taken after its handler faulted: {}",
            e.message()
        ))
    })?;
    reset(&dor);
    let arrived = time::wait_until(&KernelClock, 20_000, 100, || {
        SEEN.0.load(Ordering::SeqCst) > 0
    });
    if !arrived {
        return Err(ProbeError::timeout(format_args!(
            "IRQ {IRQ} did not arrive again after the faulting handler (no EOI?)"
        )));
    }
    info!("fault_irq_raise: IRQ {IRQ} delivered to the new handler");
    Ok(())
}
