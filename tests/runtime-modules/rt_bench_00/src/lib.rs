//! Runtime test module `rt_bench_00`: small and always kept. The runtime
//! bench loads 50 copies of its object, each with the digits of its
//! `.modinfo` name patched (`rt_bench_00` .. `rt_bench_49`).

#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};
use module_api::{ProbeContext, ProbeError};

module_api::module! {
    name: "rt_bench_00",
    probe: probe,
}

static PROBES: AtomicU32 = AtomicU32::new(0);

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    PROBES.fetch_add(1, Ordering::SeqCst);
    Ok(())
}
