//! Time since boot, busy waits, and polling with a timeout.

use crate::sys;

/// Nanoseconds since boot.
pub fn now_ns() -> u64 {
    // SAFETY: reads the kernel's clock; no preconditions.
    unsafe { sys::kapi_time_ns() }
}

/// Busy-waits for `us` microseconds.
pub fn delay_us(us: u64) {
    // SAFETY: a busy wait; no preconditions.
    unsafe { sys::kapi_delay_us(us) }
}

/// A clock drivers wait on; [`KernelClock`] is the real one, host tests use
/// a fake that advances when waited on.
pub trait Clock {
    /// Nanoseconds since some fixed point.
    fn now_ns(&self) -> u64;
    /// Waits `us` microseconds.
    fn delay_us(&self, us: u64);
}

/// The kernel's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelClock;

impl Clock for KernelClock {
    fn now_ns(&self) -> u64 {
        now_ns()
    }
    fn delay_us(&self, us: u64) {
        delay_us(us)
    }
}

/// Polls `done` every `poll_us` microseconds until it returns true (then
/// `true`) or `timeout_us` microseconds have passed (then `false`). `done`
/// is always tried at least once, and once more after the deadline.
pub fn wait_until(
    clock: &impl Clock,
    timeout_us: u64,
    poll_us: u64,
    mut done: impl FnMut() -> bool,
) -> bool {
    let start = clock.now_ns();
    loop {
        if done() {
            return true;
        }
        if clock.now_ns().saturating_sub(start) >= timeout_us.saturating_mul(1000) {
            return done();
        }
        clock.delay_us(poll_us);
    }
}

/// A clock for host tests: time moves only when someone waits.
#[cfg(not(target_os = "none"))]
#[derive(Debug, Default)]
pub struct FakeClock {
    ns: core::cell::Cell<u64>,
}

#[cfg(not(target_os = "none"))]
impl FakeClock {
    /// Advances the clock by `ns` nanoseconds.
    pub fn advance_ns(&self, ns: u64) {
        self.ns.set(self.ns.get() + ns);
    }
}

#[cfg(not(target_os = "none"))]
impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.ns.get()
    }
    fn delay_us(&self, us: u64) {
        self.advance_ns(us * 1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_out_and_succeeds() {
        let c = FakeClock::default();
        let mut n = 0;
        assert!(!wait_until(&c, 100, 10, || {
            n += 1;
            false
        }));
        assert!(c.now_ns() >= 100_000);
        assert_eq!(n, 12);
        let mut k = 0;
        assert!(wait_until(&c, 100, 10, || {
            k += 1;
            k == 3
        }));
    }
}
