//! The HPET table and the counter check, over any [`MmioIo`].

use module_api::ProbeError;
use module_api::acpi::{Table, le64};
use module_api::mmio::MmioIo;
use module_api::time::Clock;

/// Size of the register block.
pub const REGS_LEN: u64 = 0x400;
const CAPABILITIES: u64 = 0x000;
const CONFIG: u64 = 0x010;
/// Main counter register.
pub const MAIN_COUNTER: u64 = 0x0f0;
const CONFIG_ENABLE: u64 = 1;
/// The specification's longest allowed period (100 ns) in femtoseconds.
const MAX_PERIOD_FS: u64 = 100_000_000;
/// How long to let the counter run.
const RUN_US: u64 = 200;

/// Reads the register block address from the table's Generic Address
/// Structure (which must be in system memory).
pub fn base_address(t: &Table<'_>) -> Result<u64, ProbeError> {
    let b = t.bytes();
    // Body: event timer block id (4), then the GAS at offset 40.
    if b.len() < 56 {
        return Err(ProbeError::io(format_args!(
            "HPET table is {} bytes, expected at least 56",
            b.len()
        )));
    }
    if b[40] != 0 {
        return Err(ProbeError::unsupported(format_args!(
            "HPET registers in address space {}, not system memory",
            b[40]
        )));
    }
    let base = le64(b, 44);
    if base == 0 {
        return Err(ProbeError::io(format_args!(
            "HPET table gives base address 0"
        )));
    }
    Ok(base)
}

/// What the running counter showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    /// PCI vendor id of the HPET.
    pub vendor: u16,
    /// Number of comparators.
    pub timers: u8,
    /// Counter period in femtoseconds.
    pub period_fs: u64,
    /// Ticks counted while the clock said `elapsed_ns` passed.
    pub ticks: u64,
    /// Nanoseconds that passed.
    pub elapsed_ns: u64,
}

/// Checks the capabilities, enables the counter and checks that it
/// advances, by at most 4 times what the elapsed time allows (clocks in an
/// emulator are coarse, so only the direction and order are checked).
/// The configuration is restored if the check fails.
pub fn start(regs: &impl MmioIo, clock: &impl Clock) -> Result<Started, ProbeError> {
    let caps = regs.read64(CAPABILITIES);
    let period_fs = caps >> 32;
    if caps == u64::MAX || period_fs == 0 || period_fs > MAX_PERIOD_FS {
        return Err(ProbeError::io(format_args!(
            "HPET capabilities {caps:#018x}: counter period {period_fs} fs out of range"
        )));
    }
    let config = regs.read64(CONFIG);
    regs.write64(CONFIG, config | CONFIG_ENABLE);
    let t0 = clock.now_ns();
    let c0 = regs.read64(MAIN_COUNTER);
    clock.delay_us(RUN_US);
    let c1 = regs.read64(MAIN_COUNTER);
    let elapsed_ns = clock.now_ns().saturating_sub(t0);
    let ticks = c1.wrapping_sub(c0);
    // Ticks the elapsed time allows, times 4, plus slack for coarse clocks.
    let max_ticks = (elapsed_ns.saturating_mul(1_000_000) / period_fs).saturating_mul(4) + 16;
    if c1 == c0 || ticks > max_ticks {
        regs.write64(CONFIG, config);
        return Err(ProbeError::io(format_args!(
            "HPET counter went from {c0:#x} to {c1:#x} in {} us",
            elapsed_ns / 1000
        )));
    }
    Ok(Started {
        vendor: (caps >> 16) as u16,
        timers: (((caps >> 8) & 0x1f) + 1) as u8,
        period_fs,
        ticks,
        elapsed_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use module_api::ProbeErrorKind;
    use module_api::acpi::build_table;
    use module_api::time::FakeClock;

    #[test]
    fn parses_qemu_table() {
        let mut body = [0u8; 20];
        body[0..4].copy_from_slice(&0x8086_a201u32.to_le_bytes());
        body[4] = 0; // system memory
        body[5] = 64;
        body[8..16].copy_from_slice(&0xfed0_0000u64.to_le_bytes());
        let mut buf = [0u8; 64];
        let n = build_table(b"HPET", 1, &body, &mut buf);
        let t = Table::parse(b"HPET", &buf[..n]).unwrap();
        assert_eq!(base_address(&t).unwrap(), 0xfed0_0000);
        body[4] = 1;
        let n = build_table(b"HPET", 1, &body, &mut buf);
        let t = Table::parse(b"HPET", &buf[..n]).unwrap();
        assert_eq!(
            base_address(&t).unwrap_err().kind(),
            ProbeErrorKind::Unsupported
        );
    }

    /// A counter that runs at `rate` ticks per elapsed microsecond of the
    /// fake clock, once enabled.
    struct Fake<'c> {
        clock: &'c FakeClock,
        caps: u64,
        config: Cell<u64>,
        rate: u64,
    }

    impl MmioIo for Fake<'_> {
        fn read64(&self, off: u64) -> u64 {
            match off {
                CAPABILITIES => self.caps,
                CONFIG => self.config.get(),
                MAIN_COUNTER if self.config.get() & 1 != 0 => {
                    self.clock.now_ns() / 1000 * self.rate
                }
                _ => 0,
            }
        }
        fn write64(&self, off: u64, v: u64) {
            assert_eq!(off, CONFIG);
            self.config.set(v);
        }
        fn read8(&self, _: u64) -> u8 {
            unreachable!()
        }
        fn read16(&self, _: u64) -> u16 {
            unreachable!()
        }
        fn read32(&self, _: u64) -> u32 {
            unreachable!()
        }
        fn write8(&self, _: u64, _: u8) {
            unreachable!()
        }
        fn write16(&self, _: u64, _: u16) {
            unreachable!()
        }
        fn write32(&self, _: u64, _: u32) {
            unreachable!()
        }
    }

    // QEMU: 10 ns period (100 MHz), vendor 8086, 3 timers, 64-bit.
    const QEMU_CAPS: u64 = 10_000_000 << 32 | 0x8086 << 16 | 1 << 13 | 2 << 8 | 1;

    #[test]
    fn counter_advances() {
        let clock = FakeClock::default();
        let f = Fake {
            clock: &clock,
            caps: QEMU_CAPS,
            config: Cell::new(0),
            rate: 100,
        };
        let s = start(&f, &clock).unwrap();
        assert_eq!((s.vendor, s.timers, s.period_fs), (0x8086, 3, 10_000_000));
        assert_eq!(s.ticks, 20_000);
        assert_eq!(f.config.get(), 1);
    }

    #[test]
    fn stuck_or_absent_counter_fails() {
        let clock = FakeClock::default();
        let stuck = Fake {
            clock: &clock,
            caps: QEMU_CAPS,
            config: Cell::new(0),
            rate: 0,
        };
        let e = start(&stuck, &clock).unwrap_err();
        assert_eq!(e.message(), "HPET counter went from 0x0 to 0x0 in 200 us");
        assert_eq!(stuck.config.get(), 0, "configuration restored");
        let absent = Fake {
            clock: &clock,
            caps: u64::MAX,
            config: Cell::new(0),
            rate: 1,
        };
        assert_eq!(
            start(&absent, &clock).unwrap_err().kind(),
            ProbeErrorKind::Io
        );
    }
}
