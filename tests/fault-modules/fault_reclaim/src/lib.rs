//! Test module `fault_reclaim`: probed after `fault_leak` was expunged, it
//! claims the I/O ports and the IRQ line `fault_leak` held (which works only
//! if the kernel released them), then asks for IRQ 6, which the kept module
//! `fault_irq_raise` holds: that must be refused as busy, and the probe
//! fails with that error.

#![no_std]
#![forbid(unsafe_code)]

use module_api::irq::{self, IrqHandler};
use module_api::ports::Ports;
use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_reclaim",
    probe: probe,
}

struct Handler;

impl IrqHandler for Handler {
    fn handle(&self) {}
}

static HANDLER: Handler = Handler;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let ports = Ports::claim(0x340, 16)?;
    irq::register(10, &HANDLER)?;
    info!(
        "fault_reclaim: got ports {:#x}+{} and IRQ 10 again",
        ports.base(),
        ports.count()
    );
    irq::register(6, &HANDLER)?;
    Err(ProbeError::io(format_args!(
        "IRQ 6 was granted although fault_irq_raise holds it"
    )))
}
