//! Test module `fault_dependent`: it depends on `fault_panic`, whose probe
//! always fails, so the kernel must expunge it without probing it. Its probe
//! would succeed, which the boot test would notice.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError};

module_api::module! {
    name: "fault_dependent",
    depends: ["fault_panic"],
    probe: probe,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    Ok(())
}
