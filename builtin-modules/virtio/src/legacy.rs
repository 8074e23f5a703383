//! Legacy register block and the initialisation sequence over any [`PortIo`].

use module_api::ProbeError;
use module_api::ports::PortIo;

const HOST_FEATURES: u16 = 0x00;
const GUEST_FEATURES: u16 = 0x04;
const DEVICE_STATUS: u16 = 0x12;
/// Device-specific configuration (no MSI-X).
pub const CONFIG: u16 = 0x14;

/// Device status bits.
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u8 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation complete (modern transport only).
    pub const FEATURES_OK: u8 = 8;
    /// The device hit an error.
    pub const NEEDS_RESET: u8 = 0x40;
    /// The guest gave up on the device.
    pub const FAILED: u8 = 0x80;
}

/// A legacy virtio device's register block.
#[derive(Debug)]
pub struct Legacy<P> {
    io: P,
}

impl<P: PortIo> Legacy<P> {
    /// Wraps the claimed register block.
    pub fn new(io: P) -> Self {
        Legacy { io }
    }

    /// Current device status.
    pub fn status(&self) -> u8 {
        self.io.read8(DEVICE_STATUS)
    }

    /// Resets the device and checks that the status reads back 0.
    pub fn reset(&self) -> Result<(), ProbeError> {
        self.io.write8(DEVICE_STATUS, 0);
        match self.status() {
            0 => Ok(()),
            s => Err(ProbeError::io(format_args!(
                "virtio device did not reset (status {s:#04x})"
            ))),
        }
    }

    fn set(&self, bits: u8) -> Result<(), ProbeError> {
        let want = self.status() | bits;
        self.io.write8(DEVICE_STATUS, want);
        let got = self.status();
        if got != want {
            return Err(ProbeError::io(format_args!(
                "virtio status reads {got:#04x} after writing {want:#04x}"
            )));
        }
        Ok(())
    }

    /// Resets the device, sets ACKNOWLEDGE and DRIVER and negotiates
    /// `wanted & offered` features. The returned [`Session`] resets the
    /// device when dropped unless [`Session::finish`] succeeded.
    pub fn begin(&self, wanted: u32) -> Result<Session<'_, P>, ProbeError> {
        self.reset()?;
        // From here on, any early return drops `s` and resets the device.
        let mut s = Session {
            dev: self,
            features: 0,
            live: false,
        };
        self.set(status::ACKNOWLEDGE)?;
        self.set(status::DRIVER)?;
        let offered = self.io.read32(HOST_FEATURES);
        s.features = offered & wanted;
        self.io.write32(GUEST_FEATURES, s.features);
        Ok(s)
    }

    /// Reads a byte of device-specific configuration.
    pub fn config8(&self, offset: u16) -> u8 {
        self.io.read8(CONFIG + offset)
    }

    /// Reads 16 bits of device-specific configuration.
    pub fn config16(&self, offset: u16) -> u16 {
        self.io.read16(CONFIG + offset)
    }

    /// Reads 32 bits of device-specific configuration.
    pub fn config32(&self, offset: u16) -> u32 {
        self.io.read32(CONFIG + offset)
    }

    /// Reads a 64-bit configuration field as two halves, retrying until
    /// two reads agree (the legacy transport has no generation counter).
    pub fn config64(&self, offset: u16) -> u64 {
        let read = || u64::from(self.config32(offset)) | u64::from(self.config32(offset + 4)) << 32;
        let mut last = read();
        for _ in 0..4 {
            let now = read();
            if now == last {
                break;
            }
            last = now;
        }
        last
    }
}

/// An initialisation in progress; dropping it before [`finish`](Session::finish)
/// resets the device (the failure path of a probe).
pub struct Session<'a, P: PortIo> {
    dev: &'a Legacy<P>,
    features: u32,
    live: bool,
}

impl<P: PortIo> Session<'_, P> {
    /// The negotiated features.
    pub fn features(&self) -> u32 {
        self.features
    }

    /// Sets DRIVER_OK and checks the device did not flag an error.
    pub fn finish(mut self) -> Result<u8, ProbeError> {
        self.dev.set(status::DRIVER_OK)?;
        let s = self.dev.status();
        if s & (status::FAILED | status::NEEDS_RESET) != 0 {
            return Err(ProbeError::io(format_args!(
                "virtio device reports status {s:#04x} after DRIVER_OK"
            )));
        }
        self.live = true;
        Ok(s)
    }
}

impl<P: PortIo> Drop for Session<'_, P> {
    fn drop(&mut self) {
        if !self.live {
            self.dev.io.write8(DEVICE_STATUS, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::{Cell, RefCell};
    use std::vec::Vec;

    /// A legacy device model: status and feature registers, a config area.
    pub struct Fake {
        pub status: Cell<u8>,
        pub host_features: u32,
        pub guest_features: Cell<u32>,
        pub config: [u8; 16],
        pub stuck: bool,
        pub history: RefCell<Vec<u8>>,
    }

    impl Fake {
        pub fn new(host_features: u32) -> Self {
            let mut config = [0u8; 16];
            config[..8].copy_from_slice(&20480u64.to_le_bytes());
            Fake {
                status: Cell::new(0x0f),
                host_features,
                guest_features: Cell::new(0),
                config,
                stuck: false,
                history: RefCell::new(Vec::new()),
            }
        }
    }

    impl PortIo for Fake {
        fn read8(&self, off: u16) -> u8 {
            match off {
                DEVICE_STATUS => self.status.get(),
                o if o >= CONFIG => self.config[usize::from(o - CONFIG)],
                _ => 0,
            }
        }
        fn write8(&self, off: u16, v: u8) {
            assert_eq!(off, DEVICE_STATUS);
            self.history.borrow_mut().push(v);
            if !self.stuck {
                self.status.set(v);
            }
        }
        fn read32(&self, off: u16) -> u32 {
            match off {
                HOST_FEATURES => self.host_features,
                o if o >= CONFIG => {
                    let o = usize::from(o - CONFIG);
                    u32::from_le_bytes(self.config[o..o + 4].try_into().unwrap())
                }
                _ => 0,
            }
        }
        fn write32(&self, off: u16, v: u32) {
            assert_eq!(off, GUEST_FEATURES);
            self.guest_features.set(v);
        }
        fn read16(&self, _: u16) -> u16 {
            unreachable!()
        }
        fn write16(&self, _: u16, _: u16) {
            unreachable!()
        }
    }

    #[test]
    fn status_sequence_and_features() {
        let dev = Legacy::new(Fake::new(0b1110));
        let s = dev.begin(0b0111).unwrap();
        assert_eq!(s.features(), 0b0110);
        assert_eq!(dev.config64(0), 20480);
        assert_eq!(s.finish().unwrap(), 7);
        assert_eq!(*dev.io.history.borrow(), [0, 1, 3, 7]);
        assert_eq!(dev.io.guest_features.get(), 0b0110);
    }

    #[test]
    fn dropped_session_resets() {
        let dev = Legacy::new(Fake::new(0));
        {
            let _s = dev.begin(0).unwrap();
        }
        assert_eq!(*dev.io.history.borrow(), [0, 1, 3, 0]);
        assert_eq!(dev.status(), 0);
    }

    #[test]
    fn absent_device_fails_reset() {
        let mut f = Fake::new(0);
        f.stuck = true;
        f.status.set(0xff);
        let dev = Legacy::new(f);
        let e = dev.begin(0).err().unwrap();
        assert_eq!(e.message(), "virtio device did not reset (status 0xff)");
    }
}
