//! IVRS table parsing and the register check.

use module_api::ProbeError;
use module_api::acpi::{Table, le16, le64};
use module_api::mmio::MmioIo;

/// Bytes of registers mapped (the check reads only the first page).
pub const REGS_LEN: u64 = 0x1000;
const CONTROL: u64 = 0x18;
const EXT_FEATURES: u64 = 0x30;
/// IVHD blocks start after the header, IVinfo and 8 reserved bytes.
const FIRST_BLOCK: usize = 48;

/// One I/O virtualisation hardware definition block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ivhd {
    /// Block type (0x10, 0x11 or 0x40).
    pub kind: u8,
    /// PCI id of the IOMMU function.
    pub device_id: u16,
    /// Physical register base.
    pub base: u64,
}

/// Up to four IVHD blocks, in table order (IVMD blocks are skipped).
pub fn ivhd_blocks(t: &Table<'_>) -> Result<heapless::Blocks, ProbeError> {
    let b = t.bytes();
    let mut out = heapless::Blocks::default();
    let mut at = FIRST_BLOCK;
    while at + 4 <= b.len() {
        let kind = b[at];
        let len = usize::from(le16(b, at + 2));
        if len < 4 || at + len > b.len() {
            return Err(ProbeError::io(format_args!(
                "IVRS block at offset {at} has bad length {len}"
            )));
        }
        if matches!(kind, 0x10 | 0x11 | 0x40) {
            if len < 16 {
                return Err(ProbeError::io(format_args!(
                    "IVHD block at offset {at} is only {len} bytes"
                )));
            }
            out.push(Ivhd {
                kind,
                device_id: le16(b, at + 4),
                base: le64(b, at + 8),
            });
        }
        at += len;
    }
    Ok(out)
}

/// A fixed-capacity list, so parsing needs no allocator.
pub mod heapless {
    use super::Ivhd;

    /// Up to four blocks; more are ignored.
    #[derive(Debug, Default)]
    pub struct Blocks {
        items: [Option<Ivhd>; 4],
    }

    impl Blocks {
        /// Appends `b` if there is room.
        pub fn push(&mut self, b: Ivhd) {
            if let Some(slot) = self.items.iter_mut().find(|s| s.is_none()) {
                *slot = Some(b);
            }
        }
    }

    impl IntoIterator for Blocks {
        type Item = Ivhd;
        type IntoIter = core::iter::Flatten<core::array::IntoIter<Option<Ivhd>, 4>>;
        fn into_iter(self) -> Self::IntoIter {
            self.items.into_iter().flatten()
        }
    }
}

/// What the unit's registers said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    /// Extended feature register.
    pub features: u64,
    /// Control register.
    pub control: u64,
}

/// Reads the extended feature and control registers; all ones means
/// nothing answers at `base`.
pub fn read_unit(regs: &impl MmioIo, base: u64) -> Result<Unit, ProbeError> {
    let features = regs.read64(EXT_FEATURES);
    let control = regs.read64(CONTROL);
    if features == u64::MAX || control == u64::MAX {
        return Err(ProbeError::io(format_args!(
            "no IOMMU answers at {base:#x} (registers read all ones)"
        )));
    }
    Ok(Unit { features, control })
}

#[cfg(test)]
mod tests {
    use super::*;
    use module_api::acpi::build_table;
    use std::vec::Vec;

    fn block(kind: u8, len: u16, dev: u16, base: u64) -> Vec<u8> {
        let mut b = std::vec![0u8; len as usize];
        b[0] = kind;
        b[2..4].copy_from_slice(&len.to_le_bytes());
        if len >= 16 {
            b[4..6].copy_from_slice(&dev.to_le_bytes());
            b[8..16].copy_from_slice(&base.to_le_bytes());
        }
        b
    }

    #[test]
    fn finds_ivhd_blocks_and_skips_ivmd() {
        let mut body = std::vec![0u8; 12];
        body.extend(block(0x10, 24, 0x10, 0xfed8_0000));
        body.extend(block(0x20, 32, 0, 0));
        body.extend(block(0x11, 40, 0x18, 0xfeb0_0000));
        let mut buf = [0u8; 256];
        let n = build_table(b"IVRS", 2, &body, &mut buf);
        let t = Table::parse(b"IVRS", &buf[..n]).unwrap();
        let got: Vec<_> = ivhd_blocks(&t).unwrap().into_iter().collect();
        assert_eq!(
            got,
            [
                Ivhd {
                    kind: 0x10,
                    device_id: 0x10,
                    base: 0xfed8_0000
                },
                Ivhd {
                    kind: 0x11,
                    device_id: 0x18,
                    base: 0xfeb0_0000
                },
            ]
        );
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut body = std::vec![0u8; 12];
        body.extend(block(0x10, 8, 0, 0));
        let mut buf = [0u8; 128];
        let n = build_table(b"IVRS", 2, &body, &mut buf);
        let t = Table::parse(b"IVRS", &buf[..n]).unwrap();
        assert_eq!(
            ivhd_blocks(&t).unwrap_err().message(),
            "IVHD block at offset 48 is only 8 bytes"
        );
        let mut body = std::vec![0u8; 12];
        body.extend(block(0x10, 24, 0, 0));
        body.truncate(30);
        let n = build_table(b"IVRS", 2, &body, &mut buf);
        let t = Table::parse(b"IVRS", &buf[..n]).unwrap();
        assert_eq!(
            ivhd_blocks(&t).unwrap_err().message(),
            "IVRS block at offset 48 has bad length 24"
        );
    }
}
