//! Module `ps2`: the i8042 PS/2 controller at ports 0x60/0x64. The probe
//! runs the controller self-test (command 0xAA must answer 0x55), with
//! timeouts, and restores the controller configuration afterwards.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod i8042;

use i8042::{I8042Io, self_test};
use module_api::ports::{PortIo, Ports};
use module_api::sync::OnceCell;
use module_api::time::KernelClock;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "ps2",
    probe: probe,
    selftest: selftest,
}

/// The controller and its configuration byte after the probe's self-test.
static CONTROLLER: OnceCell<(Controller, u8)> = OnceCell::new();

/// The controller's data and command/status ports.
struct Controller {
    data: Ports,
    cmd: Ports,
}

impl I8042Io for Controller {
    fn status(&self) -> u8 {
        self.cmd.read8(0)
    }
    fn read_data(&self) -> u8 {
        self.data.read8(0)
    }
    fn write_cmd(&self, v: u8) {
        self.cmd.write8(0, v)
    }
    fn write_data(&self, v: u8) {
        self.data.write8(0, v)
    }
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let c = Controller {
        data: Ports::claim(0x60, 1)?,
        cmd: Ports::claim(0x64, 1)?,
    };
    let config = self_test(&c, &KernelClock)?;
    info!("ps2: i8042 self-test passed, configuration byte {config:#04x}");
    device::register("i8042")?;
    let _ = CONTROLLER.set((c, config));
    Ok(())
}

/// After compaction: the controller passes its self-test again and reports
/// the same configuration byte.
fn selftest() -> Result<(), ProbeError> {
    let (c, config) = CONTROLLER
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("ps2 selftest before probe")))?;
    let again = self_test(c, &KernelClock)?;
    if again != *config {
        return Err(ProbeError::io(format_args!(
            "configuration byte now {again:#04x}, probe saw {config:#04x}"
        )));
    }
    info!("ps2: selftest: i8042 self-test passed again");
    Ok(())
}
