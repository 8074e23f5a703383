//! Test module `fault_delay`: its probe asks the kernel to busy-wait
//! `u64::MAX` microseconds. The wait is a kernel service, so the timer tick
//! cannot cut it off; the service itself must stop at the probe's budget,
//! and the kernel must expunge the module as hung.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError, info, time};

module_api::module! {
    name: "fault_delay",
    probe: probe,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    info!("fault_delay: waiting u64::MAX us in the kernel");
    time::delay_us(u64::MAX);
    Err(ProbeError::io(format_args!("delay_us(u64::MAX) returned")))
}
