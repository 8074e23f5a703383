//! Reading and decoding the CMOS clock over a [`CmosIo`].

use core::fmt;
use module_api::ProbeError;
use module_api::time::{Clock, wait_until};

const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const STATUS_A: u8 = 0x0a;
const STATUS_B: u8 = 0x0b;
/// Status A: update in progress.
const UIP: u8 = 0x80;
/// Status B: 24-hour mode.
const HOUR_24: u8 = 0x02;
/// Status B: binary (not BCD) mode.
const BINARY: u8 = 0x04;
/// Hours register: PM in 12-hour mode.
const PM: u8 = 0x80;
/// An update lasts under 2 ms; give it 10.
const UIP_TIMEOUT_US: u64 = 10_000;

/// CMOS register access.
pub trait CmosIo {
    /// Reads CMOS register `reg`.
    fn read(&self, reg: u8) -> u8;
}

/// A decoded date and time (UTC as the firmware keeps it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Full year.
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// The raw registers of one read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw {
    sec: u8,
    min: u8,
    hour: u8,
    day: u8,
    mon: u8,
    year: u8,
}

/// Converts a BCD byte; `None` if a nibble is not a decimal digit.
pub fn bcd(v: u8) -> Option<u8> {
    let (hi, lo) = (v >> 4, v & 0xf);
    (hi < 10 && lo < 10).then_some(hi * 10 + lo)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) => 29, // exact for 2000..=2099
        2 => 28,
        _ => 31,
    }
}

/// Decodes `raw` with status register B; checks every field's range.
pub fn decode(raw: Raw, status_b: u8) -> Result<DateTime, ProbeError> {
    let conv = |v: u8| {
        if status_b & BINARY != 0 {
            Some(v)
        } else {
            bcd(v)
        }
    };
    let pm = raw.hour & PM != 0;
    let bad = || {
        ProbeError::io(format_args!(
            "RTC registers are not a valid date: {:02x}-{:02x}-{:02x} {:02x}:{:02x}:{:02x} (status B {:#04x})",
            raw.year, raw.mon, raw.day, raw.hour, raw.min, raw.sec, status_b
        ))
    };
    let mut hour = conv(raw.hour & !PM).ok_or_else(bad)?;
    if status_b & HOUR_24 == 0 {
        if !(1..=12).contains(&hour) {
            return Err(bad());
        }
        hour = match (hour, pm) {
            (12, false) => 0,
            (12, true) => 12,
            (h, true) => h + 12,
            (h, false) => h,
        };
    } else if pm {
        return Err(bad());
    }
    let t = DateTime {
        year: 2000 + u16::from(conv(raw.year).ok_or_else(bad)?),
        month: conv(raw.mon).ok_or_else(bad)?,
        day: conv(raw.day).ok_or_else(bad)?,
        hour,
        minute: conv(raw.min).ok_or_else(bad)?,
        second: conv(raw.sec).ok_or_else(bad)?,
    };
    let sane = (2000..=2099).contains(&t.year)
        && (1..=12).contains(&t.month)
        && t.day >= 1
        && t.day <= days_in_month(t.year, t.month)
        && t.hour < 24
        && t.minute < 60
        && t.second < 60;
    if !sane {
        return Err(ProbeError::io(format_args!(
            "RTC reports an implausible date {t}"
        )));
    }
    Ok(t)
}

fn read_raw(io: &impl CmosIo, clock: &impl Clock) -> Result<Raw, ProbeError> {
    if !wait_until(clock, UIP_TIMEOUT_US, 50, || io.read(STATUS_A) & UIP == 0) {
        return Err(ProbeError::timeout(format_args!(
            "RTC update-in-progress flag stuck (status A {:#04x})",
            io.read(STATUS_A)
        )));
    }
    Ok(Raw {
        sec: io.read(SECONDS),
        min: io.read(MINUTES),
        hour: io.read(HOURS),
        day: io.read(DAY),
        mon: io.read(MONTH),
        year: io.read(YEAR),
    })
}

/// Reads the clock until two consecutive reads agree, then decodes it.
pub fn read_time(io: &impl CmosIo, clock: &impl Clock) -> Result<DateTime, ProbeError> {
    let mut last = read_raw(io, clock)?;
    for _ in 0..5 {
        let now = read_raw(io, clock)?;
        if now == last {
            return decode(now, io.read(STATUS_B));
        }
        last = now;
    }
    Err(ProbeError::io(format_args!(
        "RTC did not give the same time twice in a row"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use module_api::ProbeErrorKind;
    use module_api::time::FakeClock;
    use std::string::ToString;

    fn raw(year: u8, mon: u8, day: u8, hour: u8, min: u8, sec: u8) -> Raw {
        Raw {
            sec,
            min,
            hour,
            day,
            mon,
            year,
        }
    }

    #[test]
    fn bcd_digits() {
        assert_eq!(bcd(0x59), Some(59));
        assert_eq!(bcd(0x00), Some(0));
        assert_eq!(bcd(0x5a), None);
        assert_eq!(bcd(0xa1), None);
    }

    #[test]
    fn decodes_modes() {
        let bcd24 = decode(raw(0x26, 0x11, 0x22, 0x17, 0x05, 0x09), HOUR_24).unwrap();
        assert_eq!(bcd24.to_string(), "2026-11-22 17:05:09");
        let bin24 = decode(raw(26, 11, 22, 17, 5, 9), HOUR_24 | BINARY).unwrap();
        assert_eq!(bin24, bcd24);
        let pm = decode(raw(0x26, 0x11, 0x22, PM | 0x05, 0x05, 0x09), 0).unwrap();
        assert_eq!(pm.hour, 17);
        assert_eq!(decode(raw(0x26, 1, 1, 0x12, 0, 0), 0).unwrap().hour, 0);
        assert_eq!(
            decode(raw(0x26, 1, 1, PM | 0x12, 0, 0), 0).unwrap().hour,
            12
        );
        assert_eq!(
            decode(raw(0x24, 2, 0x29, 0, 0, 0), HOUR_24).unwrap().day,
            29
        );
    }

    #[test]
    fn rejects_nonsense() {
        let e = decode(raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), HOUR_24).unwrap_err();
        assert_eq!(e.kind(), ProbeErrorKind::Io);
        assert!(
            e.message()
                .starts_with("RTC registers are not a valid date")
        );
        let e = decode(raw(0x26, 0x02, 0x30, 0, 0, 0), HOUR_24).unwrap_err();
        assert_eq!(
            e.message(),
            "RTC reports an implausible date 2026-02-30 00:00:00"
        );
        assert!(decode(raw(0x26, 0x13, 0x01, 0, 0, 0), HOUR_24).is_err());
        assert!(decode(raw(0x26, 1, 1, 0x13, 0, 0), 0).is_err());
    }

    struct Fake {
        regs: [u8; 16],
    }

    impl CmosIo for Fake {
        fn read(&self, reg: u8) -> u8 {
            self.regs[reg as usize]
        }
    }

    #[test]
    fn reads_and_times_out() {
        let mut regs = [0u8; 16];
        regs[..10].copy_from_slice(&[0x30, 0, 0x15, 0, 0x08, 0, 0, 0x01, 0x03, 0x26]);
        regs[STATUS_B as usize] = HOUR_24;
        let c = FakeClock::default();
        let t = read_time(&Fake { regs }, &c).unwrap();
        assert_eq!(t.to_string(), "2026-03-01 08:15:30");
        let e = read_time(&Fake { regs: [0xff; 16] }, &c).unwrap_err();
        assert_eq!(e.kind(), ProbeErrorKind::Timeout);
        assert_eq!(
            e.message(),
            "RTC update-in-progress flag stuck (status A 0xff)"
        );
    }
}
