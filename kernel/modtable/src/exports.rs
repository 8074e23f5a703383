//! The export list: which symbols the modules of a table export, and where,
//! so that code loaded after boot can link against kept built-in modules
//! (the table itself records only the relocations the kernel redoes).
//!
//! The prelinker writes the list into the `.modtable` area right after the
//! module table, at the table's size rounded up to 8 bytes ([`offset_after`]).
//! All integers are little-endian:
//!
//! ```text
//! header   32 bytes: magic "PLMODEXP", version u32 (2), count u32,
//!                    strings_len u32, reserved u32 (0), checksum u64
//! records  count × 24 bytes: module u16 (table index), class u8, reserved u8,
//!                    offset u32 (inside the module's class), name_off u32,
//!                    name_len u32 (into the strings), sig_hash u64 (the
//!                    exporter's recorded signature, `abi::signature_hash`;
//!                    0 if it recorded none)
//! strings  strings_len bytes (symbol names, UTF-8, not NUL-terminated)
//! ```
//!
//! The checksum is [`crate::checksum::Fnv64`] over the list's 64-bit words
//! with the checksum field zeroed, as for the table. An image prelinked
//! before the list existed has none: [`ExportList::parse`] then says
//! [`ExportError::Absent`].

use crate::Class;
use crate::checksum::Fnv64;
use core::fmt;

/// Magic bytes at the start of an export list.
pub const MAGIC: [u8; 8] = *b"PLMODEXP";
/// Export list format version (2: records carry the signature hash).
pub const VERSION: u32 = 2;
/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 32;
/// Size of one record in bytes.
pub const RECORD_SIZE: usize = 24;
const CHECKSUM_AT: usize = 24;

/// Where the export list starts in the `.modtable` area: after a table of
/// `table_size` bytes, at the next 8-byte boundary.
pub const fn offset_after(table_size: usize) -> usize {
    (table_size + 7) & !7
}

/// One exported symbol: a place in a class of a module of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Export<'a> {
    /// Symbol name.
    pub name: &'a str,
    /// Index of the exporting module in the table.
    pub module: u16,
    /// Class holding the symbol.
    pub class: Class,
    /// Offset of the symbol inside the module's class.
    pub offset: u32,
    /// Hash of the signature the exporter records (0: none recorded).
    pub sig_hash: u64,
}

/// Why an export list could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportError {
    /// No export list follows the table.
    Absent,
    /// A version this reader does not know.
    Version(u32),
    /// Records or strings lie outside the area.
    OutOfBounds,
    /// The checksum does not match the bytes.
    Checksum,
    /// A record is invalid (class, name).
    BadRecord(u32),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Absent => write!(f, "no export list after the module table"),
            ExportError::Version(v) => write!(f, "export list version {v}, expected {VERSION}"),
            ExportError::OutOfBounds => write!(f, "export list out of bounds"),
            ExportError::Checksum => write!(f, "export list checksum mismatch"),
            ExportError::BadRecord(i) => write!(f, "export list record {i} is invalid"),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut h = Fnv64::default();
    h.update_words(&bytes[..CHECKSUM_AT]);
    h.update_words(&[0u8; 8]);
    h.update_words(&bytes[CHECKSUM_AT + 8..]);
    h.finish()
}

/// A validated view of an export list.
#[derive(Clone, Copy, Debug)]
pub struct ExportList<'a> {
    records: &'a [u8],
    strings: &'a [u8],
}

impl<'a> ExportList<'a> {
    /// Validates the list at the start of `bytes` (which may be longer).
    pub fn parse(bytes: &'a [u8]) -> Result<ExportList<'a>, ExportError> {
        if bytes.len() < HEADER_SIZE || bytes[..8] != MAGIC {
            return Err(ExportError::Absent);
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return Err(ExportError::Version(version));
        }
        let count = u32_at(bytes, 12) as usize;
        let strings_len = u32_at(bytes, 16) as usize;
        let size = count
            .checked_mul(RECORD_SIZE)
            .and_then(|r| r.checked_add(HEADER_SIZE + strings_len))
            .filter(|&s| s <= bytes.len())
            .ok_or(ExportError::OutOfBounds)?;
        let bytes = &bytes[..size];
        let stored = u64::from_le_bytes(bytes[CHECKSUM_AT..CHECKSUM_AT + 8].try_into().unwrap());
        if stored != checksum(bytes) {
            return Err(ExportError::Checksum);
        }
        let records_end = HEADER_SIZE + count * RECORD_SIZE;
        let list = ExportList {
            records: &bytes[HEADER_SIZE..records_end],
            strings: &bytes[records_end..],
        };
        for i in 0..count {
            list.decode(i).ok_or(ExportError::BadRecord(i as u32))?;
        }
        Ok(list)
    }

    fn decode(&self, i: usize) -> Option<Export<'a>> {
        let r = self.records.get(i * RECORD_SIZE..(i + 1) * RECORD_SIZE)?;
        let off = u32_at(r, 8) as usize;
        let len = u32_at(r, 12) as usize;
        let name = core::str::from_utf8(self.strings.get(off..off.checked_add(len)?)?).ok()?;
        Some(Export {
            name,
            module: u16::from_le_bytes([r[0], r[1]]),
            class: Class::from_index(r[2] as u32)?,
            offset: u32_at(r, 4),
            sig_hash: u64::from_le_bytes(r[16..24].try_into().ok()?),
        })
    }

    /// Number of exports.
    pub fn len(&self) -> usize {
        self.records.len() / RECORD_SIZE
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every export, in the order written.
    pub fn iter(&self) -> impl Iterator<Item = Export<'a>> + '_ {
        (0..self.len()).filter_map(|i| self.decode(i))
    }

    /// The export called `name`, if any.
    pub fn find(&self, name: &str) -> Option<Export<'a>> {
        self.iter().find(|e| e.name == name)
    }
}

/// Serialises an export list.
#[cfg(feature = "alloc")]
pub fn build(exports: &[Export<'_>]) -> alloc::vec::Vec<u8> {
    let strings_len: usize = exports.iter().map(|e| e.name.len()).sum();
    let mut out = alloc::vec![0u8; HEADER_SIZE + exports.len() * RECORD_SIZE + strings_len];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(exports.len() as u32).to_le_bytes());
    out[16..20].copy_from_slice(&(strings_len as u32).to_le_bytes());
    let mut name_off = 0usize;
    let strings_at = HEADER_SIZE + exports.len() * RECORD_SIZE;
    for (i, e) in exports.iter().enumerate() {
        let r = &mut out[HEADER_SIZE + i * RECORD_SIZE..][..RECORD_SIZE];
        r[0..2].copy_from_slice(&e.module.to_le_bytes());
        r[2] = e.class as u8;
        r[4..8].copy_from_slice(&e.offset.to_le_bytes());
        r[8..12].copy_from_slice(&(name_off as u32).to_le_bytes());
        r[12..16].copy_from_slice(&(e.name.len() as u32).to_le_bytes());
        r[16..24].copy_from_slice(&e.sig_hash.to_le_bytes());
        out[strings_at + name_off..][..e.name.len()].copy_from_slice(e.name.as_bytes());
        name_off += e.name.len();
    }
    let sum = checksum(&out);
    out[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
    out
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    fn sample() -> [Export<'static>; 2] {
        [
            Export {
                name: "pci_find_device",
                module: 3,
                class: Class::Text,
                offset: 0x120,
                sig_hash: 0x1234,
            },
            Export {
                name: "pci_table",
                module: 3,
                class: Class::Rodata,
                offset: 8,
                sig_hash: 0,
            },
        ]
    }

    #[test]
    fn round_trip_with_trailing_bytes() {
        let mut b = build(&sample());
        b.resize(b.len() + 100, 0);
        let l = ExportList::parse(&b).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l.iter().collect::<alloc::vec::Vec<_>>(), sample());
        assert_eq!(l.find("pci_table").unwrap().offset, 8);
        assert!(l.find("nope").is_none());
        assert!(ExportList::parse(&build(&[])).unwrap().is_empty());
    }

    #[test]
    fn damage_is_detected() {
        let b = build(&sample());
        assert_eq!(
            ExportList::parse(&[0u8; 64]).unwrap_err(),
            ExportError::Absent
        );
        let mut bad = b.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(ExportList::parse(&bad).unwrap_err(), ExportError::Checksum);
        assert_eq!(
            ExportList::parse(&b[..b.len() - 1]).unwrap_err(),
            ExportError::OutOfBounds
        );
        let mut v = b.clone();
        v[8] = 9;
        assert_eq!(ExportList::parse(&v).unwrap_err(), ExportError::Version(9));
        assert_eq!(offset_after(120), 120);
        assert_eq!(offset_after(121), 128);
    }
}
