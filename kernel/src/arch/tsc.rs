//! The time-stamp counter, calibrated against the PIT.
//!
//! [`calibrate`] gates PIT channel 2 in one-shot mode (mode 0) for
//! [`CALIBRATION_MS`] milliseconds, counts TSC cycles until its output goes
//! high, repeats that [`CALIBRATION_RUNS`] times and keeps the shortest
//! window. The first TSC read comes before the gate opens and the last
//! after the output was seen high, so anything that holds the CPU up (an
//! SMI, a host that stops the virtual machine) can only lengthen a window:
//! the shortest is the least disturbed, where a median would follow a
//! majority of disturbed ones. Until then [`ticks_to_ns`] and [`now_ns`]
//! return 0. [`now_ns`] counts from kernel entry ([`mark_boot`]).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::irq::PIT_HZ;
use crate::arch::port::{inb, outb};

/// Length of one calibration window.
pub const CALIBRATION_MS: u64 = 10;
/// Number of windows (the shortest kept).
pub const CALIBRATION_RUNS: usize = 5;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

/// Records the TSC value that [`now_ns`] counts from; called first thing at
/// kernel entry.
pub fn mark_boot() {
    BOOT_TSC.store(read(), Ordering::Relaxed);
}

/// Reads the time-stamp counter.
#[inline]
pub fn read() -> u64 {
    // SAFETY: RDTSC has no side effects; the kernel runs at CPL 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// One window: TSC cycles while PIT channel 2 counts `count` input ticks.
fn measure(count: u16) -> u64 {
    // SAFETY: port 0x61 bit 0 gates PIT channel 2 and bit 1 drives the PC
    // speaker (kept off); port 0x43/0x42 program only channel 2.
    unsafe {
        let gate = inb(0x61);
        outb(0x61, (gate & !0x02) & !0x01); // gate low while loading
        outb(0x43, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        outb(0x42, count as u8);
        outb(0x42, (count >> 8) as u8);
        let start = read();
        outb(0x61, (gate & !0x02) | 0x01); // gate high: start counting
        // OUT2 (bit 5) goes high when the count reaches zero.
        let mut spins = 0u64;
        while inb(0x61) & 0x20 == 0 {
            spins += 1;
            if spins > 100_000_000 {
                return 0;
            }
        }
        let end = read();
        outb(0x61, gate & !0x03);
        end.wrapping_sub(start)
    }
}

/// Calibrates the TSC and returns its frequency in Hz (0 if the PIT did not
/// respond). Runs with interrupts disabled.
pub fn calibrate() -> u64 {
    let count = (PIT_HZ * CALIBRATION_MS / 1000) as u16;
    let mut samples = [0u64; CALIBRATION_RUNS];
    crate::arch::without_interrupts(|| {
        for s in samples.iter_mut() {
            *s = measure(count);
        }
    });
    // A window of 0 is one where the PIT never answered.
    let cycles = samples
        .iter()
        .copied()
        .filter(|&c| c > 0)
        .min()
        .unwrap_or(0);
    // cycles per `count` PIT ticks -> cycles per second.
    let hz = (u128::from(cycles) * u128::from(PIT_HZ) / u128::from(count)) as u64;
    TSC_HZ.store(hz, Ordering::Relaxed);
    hz
}

/// Calibrated frequency in Hz (0 before [`calibrate`]).
pub fn frequency_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Converts a TSC cycle count to nanoseconds (0 before calibration).
pub fn ticks_to_ns(ticks: u64) -> u64 {
    match frequency_hz() {
        0 => 0,
        hz => (u128::from(ticks) * 1_000_000_000 / u128::from(hz)) as u64,
    }
}

/// Nanoseconds since kernel entry (0 before calibration).
pub fn now_ns() -> u64 {
    match frequency_hz() {
        0 => 0,
        _ => ticks_to_ns(read().wrapping_sub(BOOT_TSC.load(Ordering::Relaxed))),
    }
}

/// Busy-waits at least `ns` nanoseconds (needs calibration).
pub fn delay_ns(ns: u64) {
    let hz = frequency_hz();
    if hz == 0 {
        return;
    }
    let cycles = (u128::from(ns) * u128::from(hz) / 1_000_000_000) as u64;
    let start = read();
    while read().wrapping_sub(start) < cycles {
        core::hint::spin_loop();
    }
}
