//! Bus enumeration over any [`ConfigSpace`].

use alloc::vec::Vec;
use module_api::ProbeError;
use module_api::pci::{ConfigSpace, PciDevice, bdf};

/// Fails unless a host bridge (class 06.00) answers at 00:00.0.
pub fn check_host_bridge(cs: &impl ConfigSpace) -> Result<(), ProbeError> {
    let id = cs.read(bdf(0, 0, 0), 0, 4);
    let Some(d) = PciDevice::read(cs, bdf(0, 0, 0)) else {
        return Err(ProbeError::no_device(format_args!(
            "no PCI host bridge: 00:00.0 reads {id:#010x}"
        )));
    };
    if (d.class, d.subclass) != (0x06, 0x00) {
        return Err(ProbeError::no_device(format_args!(
            "no PCI host bridge: 00:00.0 is {:04x}:{:04x} class {:02x}.{:02x}",
            d.vendor, d.device, d.class, d.subclass
        )));
    }
    Ok(())
}

/// Every function on buses 0..=255, in bus/device/function order. Functions
/// 1..7 are looked at only for multi-function devices.
pub fn enumerate(cs: &impl ConfigSpace) -> Vec<PciDevice> {
    let mut out = Vec::new();
    for bus in 0..=255u8 {
        for dev in 0..32u8 {
            let Some(f0) = PciDevice::read(cs, bdf(bus, dev, 0)) else {
                continue;
            };
            let multi = f0.header_type & 0x80 != 0;
            out.push(f0);
            if multi {
                for func in 1..8u8 {
                    if let Some(f) = PciDevice::read(cs, bdf(bus, dev, func)) {
                        out.push(f);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use module_api::ProbeErrorKind;
    use module_api::pci::fake::FakeBus;

    fn q35_like() -> FakeBus {
        let mut bus = FakeBus::new();
        bus.add(bdf(0, 0, 0), 0x8086, 0x29c0, [6, 0, 0], 0);
        bus.add(bdf(0, 2, 0), 0x1234, 0x1111, [3, 0, 0], 0);
        bus.add(bdf(0, 0x1f, 0), 0x8086, 0x2918, [6, 1, 0], 0x80);
        bus.add(bdf(0, 0x1f, 2), 0x8086, 0x2922, [1, 6, 1], 0);
        // Function 1 of a single-function device is never looked at.
        bus.add(bdf(0, 2, 1), 0xdead, 0xbeef, [0, 0, 0], 0);
        bus.add(bdf(3, 0, 0), 0x1af4, 0x1001, [1, 0, 0], 0);
        bus
    }

    #[test]
    fn enumerates_in_order() {
        let bus = q35_like();
        check_host_bridge(&bus).unwrap();
        let ids: Vec<_> = enumerate(&bus).iter().map(|d| (d.bdf, d.device)).collect();
        assert_eq!(
            ids,
            [
                (bdf(0, 0, 0), 0x29c0),
                (bdf(0, 2, 0), 0x1111),
                (bdf(0, 0x1f, 0), 0x2918),
                (bdf(0, 0x1f, 2), 0x2922),
                (bdf(3, 0, 0), 0x1001),
            ]
        );
    }

    #[test]
    fn no_bridge() {
        let e = check_host_bridge(&FakeBus::new()).unwrap_err();
        assert_eq!(e.kind(), ProbeErrorKind::NoDevice);
        assert_eq!(e.message(), "no PCI host bridge: 00:00.0 reads 0xffffffff");
        let mut bus = FakeBus::new();
        bus.add(bdf(0, 0, 0), 0x1af4, 0x1000, [2, 0, 0], 0);
        assert_eq!(
            check_host_bridge(&bus).unwrap_err().message(),
            "no PCI host bridge: 00:00.0 is 1af4:1000 class 02.00"
        );
    }
}
