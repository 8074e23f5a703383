//! Test module `fault_percpu`: it has per-CPU data (a counter and a
//! 200-byte buffer per CPU), and its probe writes them on every CPU, then
//! fails. The kernel must free its per-CPU copies on every CPU: no heap
//! leak, and its bytes counted in the report's `percpu.freed_bytes`.

#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use module_api::{ProbeContext, ProbeError, info, percpu};

module_api::module! {
    name: "fault_percpu",
    probe: probe,
}

module_api::percpu! {
    /// Touched by the probe on every CPU.
    static COUNT: AtomicU64 = AtomicU64::new(7);
    /// More per-CPU bytes, so the copy spans several cache lines.
    static BUF: [AtomicU8; 200] = [const { AtomicU8::new(0) }; 200];
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let cpus = percpu::cpus();
    for cpu in 0..cpus {
        let Some(c) = COUNT.on_cpu(cpu) else {
            return Err(ProbeError::io(format_args!(
                "no per-CPU copy for CPU {cpu}"
            )));
        };
        if c.fetch_add(1, Ordering::Relaxed) != 7 {
            return Err(ProbeError::io(format_args!(
                "CPU {cpu}'s copy did not start from the template"
            )));
        }
        if let Some(b) = BUF.on_cpu(cpu) {
            b[cpu % 200].store(0x5a, Ordering::Relaxed);
        }
    }
    COUNT.this_cpu().fetch_add(1, Ordering::Relaxed);
    info!("fault_percpu: wrote its per-CPU data on {cpus} CPU(s)");
    Err(ProbeError::io(format_args!(
        "deliberate failure after writing per-CPU data on {cpus} CPU(s)"
    )))
}
