//! ACPI tables: fetch a copy from the kernel and read its header.

use crate::sys;
use alloc::vec::Vec;
use core::fmt;
pub use modabi::Status;

/// Length of the common System Description Table header.
pub const HEADER_LEN: usize = 36;

/// Copies the `index`th ACPI table with signature `sig` into `buf` (as much
/// as fits) and returns its full length; `Err(Status::NotFound)` if there is
/// no such table.
pub fn find_table(sig: &[u8; 4], index: u32, buf: &mut [u8]) -> Result<usize, Status> {
    // SAFETY: `sig` points to 4 readable bytes and `buf` to `buf.len()`
    // writable bytes, both valid for the duration of the call.
    let n = unsafe { sys::kapi_acpi_table(sig.as_ptr(), index, buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        Err(i32::try_from(n)
            .ok()
            .and_then(Status::from_i32)
            .unwrap_or(Status::Invalid))
    } else {
        Ok(n as usize)
    }
}

/// Largest table [`load`] accepts (a sanity bound on the length field).
pub const MAX_TABLE_LEN: usize = 1 << 20;

/// Copies the `index`th table with signature `sig` into a vector of its
/// full length; `Err(Status::NotFound)` if there is no such table.
pub fn load(sig: &[u8; 4], index: u32) -> Result<Vec<u8>, Status> {
    let len = find_table(sig, index, &mut [])?;
    if len > MAX_TABLE_LEN {
        return Err(Status::Invalid);
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| Status::NoMemory)?;
    buf.resize(len, 0);
    let again = find_table(sig, index, &mut buf)?;
    buf.truncate(again.min(len));
    Ok(buf)
}

/// A malformed table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// Shorter than its header or than its own length field says.
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The signature is not the one asked for.
    Signature([u8; 4]),
    /// The bytes do not sum to zero.
    Checksum(u8),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::Truncated { need, have } => {
                write!(f, "table truncated: {have} of {need} bytes")
            }
            TableError::Signature(s) => write!(f, "unexpected signature {:?}", Sig(s)),
            TableError::Checksum(c) => write!(f, "checksum off by {c:#04x}"),
        }
    }
}

/// Displays a 4-byte signature as text.
pub struct Sig<'a>(pub &'a [u8; 4]);

impl fmt::Debug for Sig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            let c = if b.is_ascii_graphic() { b as char } else { '?' };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

/// A validated table: signature, length and checksum checked.
#[derive(Clone, Copy, Debug)]
pub struct Table<'a> {
    bytes: &'a [u8],
}

impl<'a> Table<'a> {
    /// Validates `bytes` as a table with signature `sig`. Trailing bytes
    /// beyond the length field are ignored.
    pub fn parse(sig: &[u8; 4], bytes: &'a [u8]) -> Result<Table<'a>, TableError> {
        if bytes.len() < HEADER_LEN {
            return Err(TableError::Truncated {
                need: HEADER_LEN,
                have: bytes.len(),
            });
        }
        let got = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if &got != sig {
            return Err(TableError::Signature(got));
        }
        let len = le32(bytes, 4) as usize;
        if len < HEADER_LEN || len > bytes.len() {
            return Err(TableError::Truncated {
                need: len.max(HEADER_LEN),
                have: bytes.len(),
            });
        }
        let bytes = &bytes[..len];
        let sum = bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        if sum != 0 {
            return Err(TableError::Checksum(sum));
        }
        Ok(Table { bytes })
    }

    /// The whole table, header included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The bytes after the common header.
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// Table revision.
    pub fn revision(&self) -> u8 {
        self.bytes[8]
    }

    /// OEM id (6 bytes).
    pub fn oem_id(&self) -> &'a [u8] {
        &self.bytes[10..16]
    }
}

/// Little-endian u16 at `at` (panics if out of range: callers check lengths).
pub fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Little-endian u32 at `at`.
pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Little-endian u64 at `at`.
pub fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | u64::from(le32(b, at + 4)) << 32
}

/// Builds a table with a correct header and checksum (host tests).
#[cfg(not(target_os = "none"))]
pub fn build_table(sig: &[u8; 4], revision: u8, body: &[u8], out: &mut [u8]) -> usize {
    let len = HEADER_LEN + body.len();
    out[..len].fill(0);
    out[0..4].copy_from_slice(sig);
    out[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    out[8] = revision;
    out[10..16].copy_from_slice(b"BOCHS ");
    out[HEADER_LEN..len].copy_from_slice(body);
    let sum = out[..len].iter().fold(0u8, |a, &b| a.wrapping_add(b));
    out[9] = 0u8.wrapping_sub(sum);
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_header() {
        let mut buf = [0u8; 64];
        let n = build_table(b"HPET", 1, &[1, 2, 3, 4], &mut buf);
        let t = Table::parse(b"HPET", &buf).unwrap();
        assert_eq!(t.bytes().len(), n);
        assert_eq!(t.body(), &[1, 2, 3, 4]);
        assert_eq!(t.oem_id(), b"BOCHS ");
        assert_eq!(
            Table::parse(b"DMAR", &buf).unwrap_err(),
            TableError::Signature(*b"HPET")
        );
        assert!(matches!(
            Table::parse(b"HPET", &buf[..30]),
            Err(TableError::Truncated { need: 36, have: 30 })
        ));
        assert!(matches!(
            Table::parse(b"HPET", &buf[..38]),
            Err(TableError::Truncated { need: 40, have: 38 })
        ));
        buf[37] ^= 0x10;
        assert_eq!(
            Table::parse(b"HPET", &buf).unwrap_err(),
            TableError::Checksum(0x10)
        );
        assert_eq!(format!("{:?}", Sig(b"IVRS")), "IVRS");
    }
}
