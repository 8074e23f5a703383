//! Local APIC timer arithmetic.
//!
//! The kernel calibrates each CPU's timer against the TSC: it lets the timer
//! count down from its maximum while the TSC runs a known number of cycles,
//! and reads how far it got.

/// Frequency of the (divided) timer clock: `counted` timer ticks while the
/// TSC, running at `tsc_hz`, advanced `tsc_cycles`. 0 if nothing was
/// measured.
pub fn counter_hz(counted: u64, tsc_cycles: u64, tsc_hz: u64) -> u64 {
    if tsc_cycles == 0 {
        return 0;
    }
    (u128::from(counted) * u128::from(tsc_hz) / u128::from(tsc_cycles)) as u64
}

/// Initial count of a periodic timer that fires `tick_hz` times a second on
/// a clock of `counter_hz`: at least 1, at most `u32::MAX`.
pub fn periodic_count(counter_hz: u64, tick_hz: u64) -> u32 {
    (counter_hz / tick_hz.max(1)).clamp(1, u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_scales_by_the_tsc() {
        // 1 GHz bus / 16 = 62.5 MHz; 5 ms of a 2.6 GHz TSC.
        let tsc_hz = 2_600_000_000;
        let cycles = tsc_hz / 200;
        assert_eq!(counter_hz(312_500, cycles, tsc_hz), 62_500_000);
        assert_eq!(counter_hz(100, 0, tsc_hz), 0);
        // No overflow with large figures.
        assert_eq!(
            counter_hz(u64::from(u32::MAX), 1 << 40, 1 << 40),
            u64::from(u32::MAX)
        );
    }

    #[test]
    fn periodic_counts_are_clamped() {
        assert_eq!(periodic_count(62_500_000, 100), 625_000);
        assert_eq!(periodic_count(50, 100), 1);
        assert_eq!(periodic_count(u64::MAX, 1), u32::MAX);
        assert_eq!(periodic_count(1000, 0), 1000);
    }
}
