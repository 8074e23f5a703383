//! Runtime test module `rt_irq_spin`: its probe registers a handler for
//! IRQ 6 and makes the floppy controller raise it. The handler polls the
//! controller for a value it never reads, for ever, as a driver waiting for
//! a status bit with no time limit would: its own code and the port
//! service, with interrupts off, so no timer tick can stop it. The kernel's
//! NMI watchdog must cut it off; the probe then fails with that reason and
//! the kernel goes on.

#![no_std]
#![forbid(unsafe_code)]

use module_api::irq::{self, IrqHandler};
use module_api::ports::{PortIo, Ports};
use module_api::sync::OnceCell;
use module_api::{ProbeContext, ProbeError, time};

module_api::module! {
    name: "rt_irq_spin",
    probe: probe,
}

/// The floppy controller's IRQ line.
const IRQ: u8 = 6;
/// Digital output register of the primary floppy controller.
const DOR: u16 = 0x3f2;
/// DOR: controller out of reset, DMA and interrupts enabled.
const DOR_RUN: u8 = 0x0c;
/// A DOR value the handler waits for; nothing ever writes it.
const NEVER: u8 = 0xff;

static PORT: OnceCell<Ports> = OnceCell::new();

struct Spin;

impl IrqHandler for Spin {
    fn handle(&self) {
        let Some(dor) = PORT.get() else { return };
        while dor.read8(0) != NEVER {
            core::hint::spin_loop();
        }
    }
}

static HANDLER: Spin = Spin;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    if PORT.set(Ports::claim(DOR, 1)?).is_err() {
        return Err(ProbeError::busy(format_args!("rt_irq_spin: probed twice")));
    }
    let Some(dor) = PORT.get() else {
        return Err(ProbeError::busy(format_args!("rt_irq_spin: no port")));
    };
    irq::register(IRQ, &HANDLER)?;
    // Leaving reset makes the controller interrupt.
    dor.write8(0, 0);
    time::delay_us(10);
    dor.write8(0, DOR_RUN);
    // Short waits, well inside the probe's budget: the end of each is where
    // the kernel ends this probe with its handler's fate.
    for _ in 0..1000 {
        time::delay_us(1000);
    }
    Err(ProbeError::timeout(format_args!(
        "IRQ {IRQ}'s handler was not stopped within a second"
    )))
}
