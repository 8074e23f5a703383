//! `kapi_time_ns` and `kapi_delay_us`, from the calibrated TSC.

use super::service;
use crate::modules::guard;

/// Nanoseconds since boot.
pub extern "C" fn kapi_time_ns() -> u64 {
    service("kapi_time_ns", || Ok(crate::arch::tsc::now_ns()))
}
crate::export_symbol!(kapi_time_ns);

/// Busy-waits `us` microseconds, but never past the running call's time
/// budget: then the call ends as hung.
pub extern "C" fn kapi_delay_us(us: u64) {
    service("kapi_delay_us", || {
        let end = crate::arch::tsc::now_ns().saturating_add(us.saturating_mul(1000));
        while crate::arch::tsc::now_ns() < end {
            guard::check_deadline("kapi_delay_us")?;
            core::hint::spin_loop();
        }
        Ok(())
    })
}
crate::export_symbol!(kapi_delay_us);
