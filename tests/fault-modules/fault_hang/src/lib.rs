//! Test module `fault_hang`: its probe never returns; the kernel's probe
//! time budget must expunge it.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_hang",
    probe: probe,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    info!("fault_hang: spinning forever");
    loop {
        core::hint::spin_loop();
    }
}
