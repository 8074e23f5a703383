//! Test module `fault_panic`: its probe panics; the module API's panic
//! handler passes the message to `kapi_panic` and the kernel expunges the
//! module.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError};

module_api::module! {
    name: "fault_panic",
    probe: probe,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let answer = core::hint::black_box(42);
    panic!("fault_panic: deliberate panic in probe (answer {answer})");
}
