//! Runtime test module `rt_undef`: calls a function that neither the kernel
//! nor any module exports, so the loader must refuse it, naming the symbol.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError};

module_api::module! {
    name: "rt_undef",
    probe: probe,
}

module_api::import_fn! {
    fn rt_missing_symbol() -> u32;
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    if rt_missing_symbol() == 0 {
        return Err(ProbeError::io(format_args!("rt_undef: zero")));
    }
    Ok(())
}
