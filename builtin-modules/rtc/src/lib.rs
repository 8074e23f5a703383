//! Module `rtc`: the CMOS real-time clock at ports 0x70/0x71. The probe
//! waits for the update-in-progress flag to clear, reads the date and time
//! twice until two reads agree, decodes BCD or binary and 12- or 24-hour
//! formats, and checks the result is a plausible date (year 2000..=2099).

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod cmos;

use cmos::{CmosIo, read_time};
use module_api::ports::{PortIo, Ports};
use module_api::time::KernelClock;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "rtc",
    probe: probe,
}

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
    device::register("rtc0")
}
