//! Test module `fault_log_huge`: its probe calls `kapi_log` directly with a
//! valid pointer and a length of 1 TiB, as a module that bypassed the
//! module API could. The kernel must refuse the buffer before reading it
//! (a violation), not print or scan a terabyte.

#![no_std]
// Calling the raw service needs `unsafe`; built only for the tests.
#![allow(unsafe_code)]

use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_log_huge",
    probe: probe,
}

unsafe extern "C" {
    fn kapi_log(level: u32, msg: *const u8, len: usize);
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let text = b"fault_log_huge: this line claims to be 1 TiB long";
    info!("fault_log_huge: logging {} bytes as 1 TiB", text.len());
    // SAFETY: deliberately lying about the length; the kernel must check it
    // before touching the buffer.
    unsafe { kapi_log(3, text.as_ptr(), 1 << 40) };
    Err(ProbeError::io(format_args!(
        "a 1 TiB log line was accepted"
    )))
}
