//! Runtime test module `rt_user`: depends on the runtime module `rt_hello`
//! and calls its export, so `rt_hello` cannot be unloaded while it is.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "rt_user",
    depends: ["rt_hello"],
    probe: probe,
}

module_api::import_fn! {
    fn rt_hello_version() -> u32;
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let v = rt_hello_version();
    if v != 0x0001_0203 {
        return Err(ProbeError::io(format_args!(
            "rt_user: rt_hello_version returned {v:#x}"
        )));
    }
    info!("rt_user: rt_hello_version() = {v:#x}");
    Ok(())
}
