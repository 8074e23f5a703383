//! Test module `fault_selftest`: its probe succeeds, so it is kept and
//! compacted; its self-test then fails. The boot must say so: a `FAIL` in
//! the report table, `"selftest": "failed"` with the reason in the JSON,
//! and the "booted, degraded" exit status.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError};

module_api::module! {
    name: "fault_selftest",
    probe: probe,
    selftest: selftest,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    Ok(())
}

fn selftest() -> Result<(), ProbeError> {
    let answer = core::hint::black_box(41);
    Err(ProbeError::io(format_args!(
        "deliberate self-test failure (read {answer}, expected 42)"
    )))
}
