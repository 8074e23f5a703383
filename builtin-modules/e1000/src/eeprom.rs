//! EEPROM access through the EERD register, over any [`MmioIo`].

use module_api::ProbeError;
use module_api::mmio::MmioIo;
use module_api::time::{Clock, wait_until};

/// Device status register.
const STATUS: u64 = 0x0008;
/// EEPROM read register.
const EERD: u64 = 0x0014;
/// EERD: start a read.
const EERD_START: u32 = 1 << 0;
/// EERD: read done (82540EM layout: address in bits 15:8).
const EERD_DONE: u32 = 1 << 4;
const EERD_ADDR_SHIFT: u32 = 8;
const EERD_DATA_SHIFT: u32 = 16;
/// An EEPROM word read takes microseconds; allow 10 ms.
const READ_TIMEOUT_US: u64 = 10_000;

/// Reads STATUS; fails if the register window does not answer.
pub fn check_status(regs: &impl MmioIo) -> Result<u32, ProbeError> {
    let status = regs.read32(STATUS);
    if status == u32::MAX {
        return Err(ProbeError::io(format_args!(
            "e1000 STATUS register reads 0xffffffff: registers not decoded"
        )));
    }
    Ok(status)
}

/// Reads EEPROM word `addr`.
pub fn read_word(regs: &impl MmioIo, clock: &impl Clock, addr: u8) -> Result<u16, ProbeError> {
    regs.write32(EERD, u32::from(addr) << EERD_ADDR_SHIFT | EERD_START);
    let mut last = 0;
    let done = wait_until(clock, READ_TIMEOUT_US, 5, || {
        last = regs.read32(EERD);
        last & EERD_DONE != 0
    });
    if !done {
        return Err(ProbeError::timeout(format_args!(
            "EEPROM read of word {addr} timed out (EERD {last:#010x})"
        )));
    }
    Ok((last >> EERD_DATA_SHIFT) as u16)
}

/// Reads the MAC address (EEPROM words 0..3, little-endian) and checks it
/// is a unicast address that is neither all zeros nor all ones.
pub fn read_mac(regs: &impl MmioIo, clock: &impl Clock) -> Result<[u8; 6], ProbeError> {
    let mut mac = [0u8; 6];
    for (i, pair) in mac.chunks_exact_mut(2).enumerate() {
        pair.copy_from_slice(&read_word(regs, clock, i as u8)?.to_le_bytes());
    }
    if mac == [0; 6] || mac == [0xff; 6] || mac[0] & 1 != 0 {
        let m = mac;
        return Err(ProbeError::io(format_args!(
            "EEPROM holds an invalid MAC address {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use module_api::ProbeErrorKind;
    use module_api::time::FakeClock;

    /// EERD completes a read on the first poll after it was started.
    struct Fake {
        words: [u16; 3],
        eerd: Cell<u32>,
        dead: bool,
    }

    impl MmioIo for Fake {
        fn read32(&self, off: u64) -> u32 {
            match off {
                STATUS => 0x80080783,
                EERD => {
                    let v = self.eerd.get();
                    if v & EERD_START != 0 && !self.dead {
                        let a = ((v >> EERD_ADDR_SHIFT) & 0xff) as usize;
                        let w = u32::from(self.words[a]);
                        self.eerd
                            .set(w << EERD_DATA_SHIFT | EERD_DONE | (a as u32) << 8);
                    }
                    v
                }
                _ => 0,
            }
        }
        fn write32(&self, off: u64, v: u32) {
            assert_eq!(off, EERD);
            self.eerd.set(v);
        }
        fn read8(&self, _: u64) -> u8 {
            unreachable!()
        }
        fn read16(&self, _: u64) -> u16 {
            unreachable!()
        }
        fn read64(&self, _: u64) -> u64 {
            unreachable!()
        }
        fn write8(&self, _: u64, _: u8) {
            unreachable!()
        }
        fn write16(&self, _: u64, _: u16) {
            unreachable!()
        }
        fn write64(&self, _: u64, _: u64) {
            unreachable!()
        }
    }

    #[test]
    fn reads_qemu_default_mac() {
        let f = Fake {
            words: [0x5452, 0x1200, 0x5634],
            eerd: Cell::new(0),
            dead: false,
        };
        let mac = read_mac(&f, &FakeClock::default()).unwrap();
        assert_eq!(mac, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(check_status(&f).unwrap(), 0x80080783);
    }

    #[test]
    fn timeout_and_invalid() {
        let c = FakeClock::default();
        let f = Fake {
            words: [0; 3],
            eerd: Cell::new(0),
            dead: true,
        };
        let e = read_mac(&f, &c).unwrap_err();
        assert_eq!(e.kind(), ProbeErrorKind::Timeout);
        assert_eq!(
            e.message(),
            "EEPROM read of word 0 timed out (EERD 0x00000001)"
        );
        let f = Fake {
            words: [0xffff; 3],
            eerd: Cell::new(0),
            dead: false,
        };
        assert_eq!(
            read_mac(&f, &c).unwrap_err().message(),
            "EEPROM holds an invalid MAC address ff:ff:ff:ff:ff:ff"
        );
    }
}
