//! Finding ACPI tables: the RSDP (root system description pointer), then
//! the RSDT (4-byte entries) or XSDT (8-byte entries) it names, then a table
//! by signature.
//!
//! Memory is read through a caller-supplied function, so the walk runs on
//! the host against byte buffers and in the kernel against the direct map.

use crate::{le32, le64};

/// Signature at the start of the RSDP.
pub const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// Size of the common header of every system description table.
pub const HEADER_LEN: usize = 36;
/// Bytes of an ACPI 1.0 RSDP (covered by its first checksum).
pub const RSDP_V1_LEN: usize = 20;
/// Bytes of an ACPI 2.0+ RSDP (covered by the extended checksum).
pub const RSDP_V2_LEN: usize = 36;

/// What the RSDP says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// ACPI revision field (0 for ACPI 1.0, 2 for 2.0 and later).
    pub revision: u8,
    /// Physical address of the root table.
    pub root: u64,
    /// Whether `root` is an XSDT (8-byte entries) rather than an RSDT.
    pub xsdt: bool,
}

/// Why a table could not be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// The bytes at the RSDP address are not a valid RSDP.
    BadRsdp,
    /// The root table could not be read or is damaged.
    BadRoot(u64),
    /// A table with the signature exists but could not be read or fails its
    /// checksum.
    BadTable(u64),
    /// No table with that signature.
    NotFound,
}

/// True if the bytes sum to zero modulo 256 (the ACPI checksum rule).
pub fn checksum_ok(b: &[u8]) -> bool {
    b.iter().fold(0u8, |a, &x| a.wrapping_add(x)) == 0
}

/// Parses an RSDP: signature, the 1.0 checksum and, from revision 2 on, the
/// extended checksum. `b` holds at least [`RSDP_V1_LEN`] bytes (36 for a
/// revision 2 RSDP). An XSDT address of 0 falls back to the RSDT.
pub fn parse_rsdp(b: &[u8]) -> Option<Rsdp> {
    if b.len() < RSDP_V1_LEN || &b[..8] != RSDP_SIGNATURE || !checksum_ok(&b[..RSDP_V1_LEN]) {
        return None;
    }
    let revision = b[15];
    let rsdt = u64::from(le32(b, 16));
    if revision >= 2 {
        if b.len() < RSDP_V2_LEN {
            return None;
        }
        let len = (le32(b, 20) as usize).clamp(RSDP_V2_LEN, b.len());
        if !checksum_ok(&b[..len]) {
            return None;
        }
        let xsdt = le64(b, 24);
        if xsdt != 0 {
            return Some(Rsdp {
                revision,
                root: xsdt,
                xsdt: true,
            });
        }
    }
    (rsdt != 0).then_some(Rsdp {
        revision,
        root: rsdt,
        xsdt: false,
    })
}

/// Offset of the first valid RSDP in `area` (searched on 16-byte
/// boundaries, as the RSDP is placed), if any.
pub fn scan_for_rsdp(area: &[u8]) -> Option<usize> {
    (0..area.len().saturating_sub(RSDP_V1_LEN - 1))
        .step_by(16)
        .find(|&off| parse_rsdp(&area[off..(off + RSDP_V2_LEN).min(area.len())]).is_some())
}

/// Signature and total length of the table whose header is `b`.
pub fn header(b: &[u8]) -> Option<([u8; 4], usize)> {
    if b.len() < 8 {
        return None;
    }
    let sig = [b[0], b[1], b[2], b[3]];
    Some((sig, le32(b, 4) as usize))
}

/// The table addresses listed in a root table (`root` is the whole RSDT or
/// XSDT, header included).
pub fn root_entries(root: &[u8], xsdt: bool) -> impl Iterator<Item = u64> + '_ {
    let step = if xsdt { 8 } else { 4 };
    root.get(HEADER_LEN..)
        .unwrap_or(&[])
        .chunks_exact(step)
        .map(move |e| {
            if xsdt {
                le64(e, 0)
            } else {
                u64::from(le32(e, 0))
            }
        })
}

/// Finds the `index`th table with signature `sig` from the RSDP at
/// physical `rsdp`, reading memory with `read(phys, len)` (which returns
/// `None` when the range cannot be read). Returns the table's physical
/// address and its bytes; the table's checksum is verified.
pub fn find_table<'a>(
    rsdp: u64,
    read: &mut dyn FnMut(u64, usize) -> Option<&'a [u8]>,
    sig: &[u8; 4],
    index: usize,
) -> Result<(u64, &'a [u8]), AcpiError> {
    let r = read(rsdp, RSDP_V2_LEN)
        .or_else(|| read(rsdp, RSDP_V1_LEN))
        .and_then(parse_rsdp)
        .ok_or(AcpiError::BadRsdp)?;
    let root = read_table(r.root, read).ok_or(AcpiError::BadRoot(r.root))?;
    let want = if r.xsdt { b"XSDT" } else { b"RSDT" };
    if &root[..4] != want {
        return Err(AcpiError::BadRoot(r.root));
    }
    let mut seen = 0;
    for phys in root_entries(root, r.xsdt) {
        let Some((s, _)) = read(phys, 8).and_then(header) else {
            continue;
        };
        if &s != sig {
            continue;
        }
        if seen == index {
            let t = read_table(phys, read).ok_or(AcpiError::BadTable(phys))?;
            return Ok((phys, t));
        }
        seen += 1;
    }
    Err(AcpiError::NotFound)
}

/// The whole table at `phys` if it can be read and its checksum holds.
fn read_table<'a>(
    phys: u64,
    read: &mut dyn FnMut(u64, usize) -> Option<&'a [u8]>,
) -> Option<&'a [u8]> {
    let (_, len) = read(phys, HEADER_LEN).and_then(header)?;
    if len < HEADER_LEN {
        return None;
    }
    let t = read(phys, len)?;
    checksum_ok(t).then_some(t)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Sets byte `at` so that `b` sums to zero.
    pub(crate) fn fix_checksum(b: &mut [u8], at: usize) {
        b[at] = 0;
        let s = b.iter().fold(0u8, |a, &x| a.wrapping_add(x));
        b[at] = 0u8.wrapping_sub(s);
    }

    /// A table with signature `sig` and body `body`, checksummed.
    pub(crate) fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; HEADER_LEN];
        t[..4].copy_from_slice(sig);
        t[4..8].copy_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
        t[8] = 1;
        t[10..16].copy_from_slice(b"PLKTST");
        t.extend_from_slice(body);
        fix_checksum(&mut t, 9);
        t
    }

    fn rsdp(revision: u8, rsdt: u32, xsdt: u64) -> Vec<u8> {
        let mut b = vec![0u8; RSDP_V2_LEN];
        b[..8].copy_from_slice(RSDP_SIGNATURE);
        b[9..15].copy_from_slice(b"PLKTST");
        b[15] = revision;
        b[16..20].copy_from_slice(&rsdt.to_le_bytes());
        b[20..24].copy_from_slice(&(RSDP_V2_LEN as u32).to_le_bytes());
        b[24..32].copy_from_slice(&xsdt.to_le_bytes());
        fix_checksum(&mut b[..RSDP_V1_LEN], 8);
        fix_checksum(&mut b, 32);
        b
    }

    /// Physical memory: a list of (address, bytes).
    struct Mem(Vec<(u64, Vec<u8>)>);

    impl Mem {
        fn reader<'a>(&'a self) -> impl FnMut(u64, usize) -> Option<&'a [u8]> + 'a {
            move |phys, len| {
                self.0.iter().find_map(|(at, bytes)| {
                    let off = phys.checked_sub(*at)? as usize;
                    bytes.get(off..off.checked_add(len)?)
                })
            }
        }
    }

    #[test]
    fn rsdp_versions_and_checksums() {
        let v1 = rsdp(0, 0x1000, 0);
        assert_eq!(
            parse_rsdp(&v1[..RSDP_V1_LEN]),
            Some(Rsdp {
                revision: 0,
                root: 0x1000,
                xsdt: false
            })
        );
        let v2 = rsdp(2, 0x1000, 0x2000);
        assert_eq!(
            parse_rsdp(&v2),
            Some(Rsdp {
                revision: 2,
                root: 0x2000,
                xsdt: true
            })
        );
        // A revision 2 RSDP without an XSDT uses the RSDT.
        assert_eq!(parse_rsdp(&rsdp(2, 0x1000, 0)).map(|r| r.xsdt), Some(false));
        let mut bad = v2.clone();
        bad[24] ^= 1;
        assert_eq!(parse_rsdp(&bad), None, "extended checksum");
        let mut bad = v1.clone();
        bad[16] ^= 1;
        assert_eq!(parse_rsdp(&bad), None, "checksum");
        assert_eq!(parse_rsdp(b"RSD PTX 0123456789ab"), None, "signature");
        assert_eq!(parse_rsdp(&v2[..10]), None, "short");
    }

    #[test]
    fn rsdp_is_found_on_a_16_byte_boundary() {
        let mut area = vec![0u8; 256];
        let r = rsdp(0, 0x1000, 0);
        // A copy off the boundary is not looked at.
        area[40..40 + RSDP_V1_LEN].copy_from_slice(&r[..RSDP_V1_LEN]);
        assert_eq!(scan_for_rsdp(&area), None);
        area[160..160 + RSDP_V1_LEN].copy_from_slice(&r[..RSDP_V1_LEN]);
        assert_eq!(scan_for_rsdp(&area), Some(160));
        // At the very end of the area, with only the 1.0 part present.
        let mut tail = vec![0u8; 64 + RSDP_V1_LEN];
        tail[64..].copy_from_slice(&r[..RSDP_V1_LEN]);
        assert_eq!(scan_for_rsdp(&tail), Some(64));
    }

    #[test]
    fn tables_are_found_through_rsdt_and_xsdt() {
        let apic = table(b"APIC", &[1, 2, 3, 4]);
        let facp = table(b"FACP", &[0; 8]);
        let apic2 = table(b"APIC", &[9; 4]);
        let mut rsdt_body = Vec::new();
        for a in [0x3000u32, 0x4000, 0x5000] {
            rsdt_body.extend_from_slice(&a.to_le_bytes());
        }
        let mut xsdt_body = Vec::new();
        for a in [0x3000u64, 0x4000] {
            xsdt_body.extend_from_slice(&a.to_le_bytes());
        }
        let mem = Mem(vec![
            (0x100, rsdp(0, 0x1000, 0)),
            (0x200, rsdp(2, 0x1000, 0x2000)),
            (0x1000, table(b"RSDT", &rsdt_body)),
            (0x2000, table(b"XSDT", &xsdt_body)),
            (0x3000, facp),
            (0x4000, apic.clone()),
            (0x5000, apic2.clone()),
        ]);
        let mut read = mem.reader();
        assert_eq!(
            find_table(0x100, &mut read, b"APIC", 0),
            Ok((0x4000, &apic[..]))
        );
        assert_eq!(
            find_table(0x100, &mut read, b"APIC", 1),
            Ok((0x5000, &apic2[..]))
        );
        assert_eq!(
            find_table(0x200, &mut read, b"APIC", 0),
            Ok((0x4000, &apic[..]))
        );
        assert_eq!(
            find_table(0x200, &mut read, b"APIC", 1),
            Err(AcpiError::NotFound),
            "the XSDT lists only one"
        );
        assert_eq!(
            find_table(0x200, &mut read, b"HPET", 0),
            Err(AcpiError::NotFound)
        );
        assert_eq!(
            find_table(0x1000, &mut read, b"APIC", 0),
            Err(AcpiError::BadRsdp)
        );
    }

    #[test]
    fn damaged_tables_are_refused() {
        let mut apic = table(b"APIC", &[1, 2, 3, 4]);
        apic[38] ^= 0xff;
        let mut bad_root = table(b"RSDT", &0x4000u32.to_le_bytes());
        bad_root[36] ^= 1;
        let mem = Mem(vec![
            (0x100, rsdp(0, 0x1000, 0)),
            (0x200, rsdp(0, 0x2000, 0)),
            (0x300, rsdp(0, 0x4000, 0)),
            (0x1000, table(b"RSDT", &0x4000u32.to_le_bytes())),
            (0x2000, bad_root),
            (0x4000, apic),
        ]);
        let mut read = mem.reader();
        assert_eq!(
            find_table(0x100, &mut read, b"APIC", 0),
            Err(AcpiError::BadTable(0x4000))
        );
        assert_eq!(
            find_table(0x200, &mut read, b"APIC", 0),
            Err(AcpiError::BadRoot(0x2000))
        );
        // The root pointer names a table that is not an RSDT.
        assert!(matches!(
            find_table(0x300, &mut read, b"APIC", 0),
            Err(AcpiError::BadRoot(0x4000))
        ));
        // Unreadable memory.
        assert_eq!(
            find_table(0x9000, &mut read, b"APIC", 0),
            Err(AcpiError::BadRsdp)
        );
    }
}
