//! Module `rtc`: the CMOS real-time clock at ports 0x70/0x71. The probe
//! waits for the update-in-progress flag to clear, reads the date and time
//! twice until two reads agree, decodes BCD or binary and 12- or 24-hour
//! formats, and checks the result is a plausible date (year 2000..=2099).

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod cmos;

use cmos::{CmosIo, DateTime, read_time};
use module_api::ports::{PortIo, Ports};
use module_api::sync::OnceCell;
use module_api::time::KernelClock;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "rtc",
    probe: probe,
    selftest: selftest,
}

/// The CMOS ports and the time read at probe time.
static CLOCK: OnceCell<(Cmos, DateTime)> = OnceCell::new();

/// Index/data port pair.
struct Cmos(Ports);

impl CmosIo for Cmos {
    fn read(&self, reg: u8) -> u8 {
        self.0.write8(0, reg);
        self.0.read8(1)
    }
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let cmos = Cmos(Ports::claim(0x70, 2)?);
    let t = read_time(&cmos, &KernelClock)?;
    info!("rtc: {t}");
    device::register("rtc0")?;
    let _ = CLOCK.set((cmos, t));
    Ok(())
}

/// After compaction: the clock still reads a sane time, on the same day as
/// the probe's reading (give or take the midnight rollover).
fn selftest() -> Result<(), ProbeError> {
    let (cmos, first) = CLOCK
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("rtc selftest before probe")))?;
    let now = read_time(cmos, &KernelClock)?;
    let same_day = (now.year, now.month, now.day) == (first.year, first.month, first.day);
    if !same_day && (now.hour, now.minute) != (0, 0) {
        return Err(ProbeError::io(format_args!(
            "clock went from {first} to {now}"
        )));
    }
    info!("rtc: selftest: {now}");
    Ok(())
}
