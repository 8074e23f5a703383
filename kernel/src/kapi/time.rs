//! `kapi_time_ns` and `kapi_delay_us`, from the calibrated TSC.

use super::service;

/// Nanoseconds since boot.
pub extern "C" fn kapi_time_ns() -> u64 {
    service(crate::arch::tsc::now_ns)
}
crate::export_symbol!(kapi_time_ns);

/// Busy-waits `us` microseconds.
pub extern "C" fn kapi_delay_us(us: u64) {
    service(|| {
        let end = crate::arch::tsc::now_ns().saturating_add(us.saturating_mul(1000));
        while crate::arch::tsc::now_ns() < end {
            core::hint::spin_loop();
        }
    })
}
crate::export_symbol!(kapi_delay_us);
