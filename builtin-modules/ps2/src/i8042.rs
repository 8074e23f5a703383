//! The i8042 self-test over an [`I8042Io`].

use module_api::ProbeError;
use module_api::time::{Clock, wait_until};

/// Status: output buffer full (data for us).
const STATUS_OUT_FULL: u8 = 0x01;
/// Status: input buffer full (controller busy with our last byte).
const STATUS_IN_FULL: u8 = 0x02;
/// Command: disable the first port.
const CMD_DISABLE_PORT1: u8 = 0xad;
/// Command: disable the second port.
const CMD_DISABLE_PORT2: u8 = 0xa7;
/// Command: enable the first port.
const CMD_ENABLE_PORT1: u8 = 0xae;
/// Command: read the configuration byte.
const CMD_READ_CONFIG: u8 = 0x20;
/// Command: write the configuration byte.
const CMD_WRITE_CONFIG: u8 = 0x60;
/// Command: controller self-test.
const CMD_SELF_TEST: u8 = 0xaa;
/// Self-test pass reply.
const SELF_TEST_OK: u8 = 0x55;
/// Per-byte timeout in microseconds.
const TIMEOUT_US: u64 = 50_000;

/// The controller's registers.
pub trait I8042Io {
    /// Reads the status register (port 0x64).
    fn status(&self) -> u8;
    /// Reads the data port (0x60).
    fn read_data(&self) -> u8;
    /// Writes a command (port 0x64).
    fn write_cmd(&self, v: u8);
    /// Writes the data port (0x60).
    fn write_data(&self, v: u8);
}

fn send_cmd(io: &impl I8042Io, clock: &impl Clock, cmd: u8) -> Result<(), ProbeError> {
    if !wait_until(clock, TIMEOUT_US, 10, || io.status() & STATUS_IN_FULL == 0) {
        return Err(ProbeError::timeout(format_args!(
            "i8042 input buffer stayed full before command {cmd:#04x} (status {:#04x})",
            io.status()
        )));
    }
    io.write_cmd(cmd);
    Ok(())
}

fn read_reply(io: &impl I8042Io, clock: &impl Clock, cmd: u8) -> Result<u8, ProbeError> {
    if !wait_until(clock, TIMEOUT_US, 10, || io.status() & STATUS_OUT_FULL != 0) {
        return Err(ProbeError::timeout(format_args!(
            "i8042 did not answer command {cmd:#04x} within {} ms",
            TIMEOUT_US / 1000
        )));
    }
    Ok(io.read_data())
}

fn flush(io: &impl I8042Io) {
    for _ in 0..32 {
        if io.status() & STATUS_OUT_FULL == 0 {
            return;
        }
        io.read_data();
    }
}

/// Runs the controller self-test and restores the configuration byte;
/// returns that byte.
pub fn self_test(io: &impl I8042Io, clock: &impl Clock) -> Result<u8, ProbeError> {
    let status = io.status();
    if status == 0xff {
        return Err(ProbeError::no_device(format_args!(
            "no i8042 controller (status port 0x64 reads 0xff)"
        )));
    }
    send_cmd(io, clock, CMD_DISABLE_PORT1)?;
    send_cmd(io, clock, CMD_DISABLE_PORT2)?;
    flush(io);
    send_cmd(io, clock, CMD_READ_CONFIG)?;
    let config = read_reply(io, clock, CMD_READ_CONFIG)?;
    send_cmd(io, clock, CMD_SELF_TEST)?;
    let reply = read_reply(io, clock, CMD_SELF_TEST)?;
    // The self-test may reset the controller: put the configuration back.
    send_cmd(io, clock, CMD_WRITE_CONFIG)?;
    if !wait_until(clock, TIMEOUT_US, 10, || io.status() & STATUS_IN_FULL == 0) {
        return Err(ProbeError::timeout(format_args!(
            "i8042 did not take the configuration byte"
        )));
    }
    io.write_data(config);
    send_cmd(io, clock, CMD_ENABLE_PORT1)?;
    if reply != SELF_TEST_OK {
        return Err(ProbeError::io(format_args!(
            "i8042 self-test returned {reply:#04x}, expected {SELF_TEST_OK:#04x}"
        )));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use module_api::ProbeErrorKind;
    use module_api::time::FakeClock;
    use std::collections::VecDeque;
    use std::vec::Vec;

    /// A controller that answers commands from a script.
    #[derive(Default)]
    struct Fake {
        absent: bool,
        mute: bool,
        self_test_reply: u8,
        out: RefCell<VecDeque<u8>>,
        config: RefCell<u8>,
        expect_config: RefCell<bool>,
        log: RefCell<Vec<u8>>,
    }

    impl I8042Io for Fake {
        fn status(&self) -> u8 {
            if self.absent {
                0xff
            } else {
                u8::from(!self.out.borrow().is_empty())
            }
        }
        fn read_data(&self) -> u8 {
            self.out.borrow_mut().pop_front().unwrap_or(0)
        }
        fn write_cmd(&self, v: u8) {
            self.log.borrow_mut().push(v);
            if self.mute {
                return;
            }
            match v {
                CMD_READ_CONFIG => self.out.borrow_mut().push_back(*self.config.borrow()),
                CMD_SELF_TEST => {
                    *self.config.borrow_mut() = 0;
                    self.out.borrow_mut().push_back(self.self_test_reply)
                }
                CMD_WRITE_CONFIG => *self.expect_config.borrow_mut() = true,
                _ => {}
            }
        }
        fn write_data(&self, v: u8) {
            assert!(self.expect_config.replace(false));
            *self.config.borrow_mut() = v;
        }
    }

    #[test]
    fn passes_and_restores_config() {
        let f = Fake {
            self_test_reply: 0x55,
            config: RefCell::new(0x47),
            ..Default::default()
        };
        f.out.borrow_mut().push_back(0x1c); // a stale scancode
        assert_eq!(self_test(&f, &FakeClock::default()).unwrap(), 0x47);
        assert_eq!(*f.config.borrow(), 0x47);
        assert_eq!(*f.log.borrow(), [0xad, 0xa7, 0x20, 0xaa, 0x60, 0xae]);
    }

    #[test]
    fn failures() {
        let c = FakeClock::default();
        let absent = Fake {
            absent: true,
            ..Default::default()
        };
        assert_eq!(
            self_test(&absent, &c).unwrap_err().kind(),
            ProbeErrorKind::NoDevice
        );
        let bad = Fake {
            self_test_reply: 0xfc,
            ..Default::default()
        };
        assert_eq!(
            self_test(&bad, &c).unwrap_err().message(),
            "i8042 self-test returned 0xfc, expected 0x55"
        );
        let mute = Fake {
            mute: true,
            ..Default::default()
        };
        let e = self_test(&mute, &c).unwrap_err();
        assert_eq!(e.kind(), ProbeErrorKind::Timeout);
        assert_eq!(
            e.message(),
            "i8042 did not answer command 0x20 within 50 ms"
        );
    }
}
