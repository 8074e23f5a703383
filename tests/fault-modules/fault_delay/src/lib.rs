//! Test module `fault_delay`: its probe asks the kernel to busy-wait
//! `u64::MAX` microseconds. The wait is a kernel service, so the timer tick
//! cannot cut it off; the service itself must stop at the probe's budget,
//! and the kernel must expunge the module as hung.
//!
//! The wait is the probe's first act, with no log line before it: the less
//! the probe does outside the service, the smaller the window in which a
//! host that stops the emulator for a whole budget lets the timer tick, not
//! the service, find the budget spent.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError, time};

module_api::module! {
    name: "fault_delay",
    probe: probe,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    time::delay_us(u64::MAX);
    Err(ProbeError::io(format_args!("delay_us(u64::MAX) returned")))
}
