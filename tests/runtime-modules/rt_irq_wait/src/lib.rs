//! Runtime test module `rt_irq_wait`: its probe registers a handler for
//! IRQ 5, a line no device of the test machines raises, and succeeds. The
//! shell's `irq 5 CPU` runs the handler on a chosen CPU. The first call
//! returns; every later one spins for ever in the module's own code with
//! interrupts off, as a driver waiting for a flag no one sets would. On a
//! CPU past the eighth only the NMI the watchdog's CPU forwards can cut it
//! off.

#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use module_api::irq::{self, IrqHandler};
use module_api::{ProbeContext, ProbeError};

module_api::module! {
    name: "rt_irq_wait",
    probe: probe,
}

/// A line left free on the test machines.
const IRQ: u8 = 5;

static CALLS: AtomicU32 = AtomicU32::new(0);
/// Never set: what the handler waits for from its second call on.
static READY: AtomicBool = AtomicBool::new(false);

struct Wait;

impl IrqHandler for Wait {
    fn handle(&self) {
        if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
            return;
        }
        while !READY.load(Ordering::SeqCst) {
            core::hint::spin_loop();
        }
    }
}

static HANDLER: Wait = Wait;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    irq::register(IRQ, &HANDLER)?;
    Ok(())
}
