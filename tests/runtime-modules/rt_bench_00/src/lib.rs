//! Runtime test module `rt_bench_00`: small and always kept; its probe logs
//! one formatted line, which is what most small drivers do, so it carries
//! the usual formatting code. The runtime bench loads 50 copies of its
//! object, each with the digits of its `.modinfo` name patched
//! (`rt_bench_00` .. `rt_bench_49`).

#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};
use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "rt_bench_00",
    probe: probe,
}

static PROBES: AtomicU32 = AtomicU32::new(0);

fn probe(ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let n = PROBES.fetch_add(1, Ordering::SeqCst) + 1;
    info!("{}: probed ({n} time)", ctx.module_name());
    Ok(())
}
