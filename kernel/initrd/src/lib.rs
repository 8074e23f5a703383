//! The initrd archive: module objects handed to the kernel as one PVH
//! module (QEMU's `-initrd`), for loading after boot.
//!
//! All integers are little-endian; the archive starts 16-byte aligned (a
//! PVH module is page-aligned) and every entry header and every entry's
//! data starts on a 16-byte boundary, so ELF headers inside are aligned:
//!
//! ```text
//! header   16 bytes: magic "PLINITRD", version u32 (1), entry count u32
//! entry    at the next 16-byte boundary:
//!          name_len u16, reserved u16 (0), reserved u32 (0),
//!          size u64 (data bytes), checksum u64 (FNV-1a 64 of the data,
//!          64-bit words: `modtable::checksum::Fnv64::update_words`),
//!          then the name (name_len bytes of [A-Za-z0-9_.-], at most
//!          MAX_NAME), then at the next 16-byte boundary the data
//! ```
//!
//! Padding bytes are zero. [`Archive::parse`] checks everything before
//! handing out an entry; [`build`] writes an archive (for `mkinitrd` and the
//! tests).

#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;
use modtable::checksum::Fnv64;

/// Magic bytes at the start of an archive.
pub const MAGIC: [u8; 8] = *b"PLINITRD";
/// Format version.
pub const VERSION: u32 = 1;
/// Size of the archive header.
pub const HEADER_SIZE: usize = 16;
/// Size of an entry header.
pub const ENTRY_HEADER_SIZE: usize = 24;
/// Longest entry name.
pub const MAX_NAME: usize = 64;
/// Alignment of entry headers and data.
pub const ALIGN: usize = 16;

/// Why an archive could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// It does not start with [`MAGIC`].
    NoMagic,
    /// A version this reader does not know.
    Version(u32),
    /// Entry `index` (or its header) runs past the end of the archive.
    Truncated {
        /// Index of the entry.
        index: u32,
    },
    /// Entry `index` has an empty, too long or invalid name.
    BadName {
        /// Index of the entry.
        index: u32,
    },
    /// The data of the entry does not match its checksum.
    Checksum {
        /// Index of the entry.
        index: u32,
    },
    /// Two entries have the same name.
    Duplicate {
        /// Index of the second one.
        index: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoMagic => write!(f, "not an initrd archive (no PLINITRD magic)"),
            Error::Version(v) => write!(f, "initrd archive version {v}, expected {VERSION}"),
            Error::Truncated { index } => write!(f, "initrd entry {index} is truncated"),
            Error::BadName { index } => write!(f, "initrd entry {index} has an invalid name"),
            Error::Checksum { index } => {
                write!(f, "initrd entry {index} does not match its checksum")
            }
            Error::Duplicate { index } => {
                write!(f, "initrd entry {index} repeats an earlier name")
            }
        }
    }
}

/// Whether `name` may name an entry.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn checksum(data: &[u8]) -> u64 {
    let mut h = Fnv64::default();
    h.update_words(data);
    h.finish()
}

const fn align(v: usize) -> usize {
    (v + ALIGN - 1) & !(ALIGN - 1)
}

/// One entry: a name and the bytes of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Entry name (`mkinitrd` uses the file name without `.o`).
    pub name: &'a str,
    /// The bytes (16-byte aligned within the archive).
    pub data: &'a [u8],
}

/// A validated archive.
#[derive(Clone, Debug)]
pub struct Archive<'a> {
    entries: Vec<Entry<'a>>,
}

impl<'a> Archive<'a> {
    /// Validates `bytes` (which may be longer than the archive: a PVH module
    /// is given in whole pages) and lists its entries.
    pub fn parse(bytes: &'a [u8]) -> Result<Archive<'a>, Error> {
        if bytes.len() < HEADER_SIZE || bytes[..8] != MAGIC {
            return Err(Error::NoMagic);
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let version = u32_at(8);
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let count = u32_at(12);
        let mut entries = Vec::new();
        let mut at = HEADER_SIZE;
        for index in 0..count {
            let truncated = Error::Truncated { index };
            let h = bytes
                .get(at..at + ENTRY_HEADER_SIZE)
                .ok_or(truncated.clone())?;
            let name_len = u16::from_le_bytes([h[0], h[1]]) as usize;
            let size = u64::from_le_bytes(h[8..16].try_into().unwrap());
            let sum = u64::from_le_bytes(h[16..24].try_into().unwrap());
            let name_at = at + ENTRY_HEADER_SIZE;
            let name = bytes
                .get(name_at..name_at + name_len)
                .ok_or(truncated.clone())?;
            let name = core::str::from_utf8(name)
                .ok()
                .filter(|n| valid_name(n))
                .ok_or(Error::BadName { index })?;
            let data_at = align(name_at + name_len);
            let data = usize::try_from(size)
                .ok()
                .and_then(|s| data_at.checked_add(s))
                .and_then(|end| bytes.get(data_at..end))
                .ok_or(truncated)?;
            if checksum(data) != sum {
                return Err(Error::Checksum { index });
            }
            if entries.iter().any(|e: &Entry<'_>| e.name == name) {
                return Err(Error::Duplicate { index });
            }
            entries.push(Entry { name, data });
            at = align(data_at + data.len());
        }
        Ok(Archive { entries })
    }

    /// The entries, in archive order.
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// The entry called `name`.
    pub fn find(&self, name: &str) -> Option<Entry<'a>> {
        self.entries.iter().find(|e| e.name == name).copied()
    }
}

/// Writes an archive of `entries` (names must be valid and distinct).
pub fn build(entries: &[Entry<'_>]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (i, e) in entries.iter().enumerate() {
        let index = i as u32;
        if !valid_name(e.name) {
            return Err(Error::BadName { index });
        }
        if entries[..i].iter().any(|p| p.name == e.name) {
            return Err(Error::Duplicate { index });
        }
        out.resize(align(out.len()), 0);
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0u8; 6]);
        out.extend_from_slice(&(e.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&checksum(e.data).to_le_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.resize(align(out.len()), 0);
        out.extend_from_slice(e.data);
    }
    out.resize(align(out.len()), 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        build(&[
            Entry {
                name: "rt_hello",
                data: b"\x7fELF hello",
            },
            Entry {
                name: "b.o-2",
                data: &[7u8; 33],
            },
            Entry {
                name: "empty",
                data: &[],
            },
        ])
        .unwrap()
    }

    #[test]
    fn round_trip_and_alignment() {
        let mut b = sample();
        assert_eq!(b.len() % ALIGN, 0);
        b.resize(b.len() + 4096, 0xee);
        let a = Archive::parse(&b).unwrap();
        let names: Vec<&str> = a.entries().iter().map(|e| e.name).collect();
        assert_eq!(names, ["rt_hello", "b.o-2", "empty"]);
        assert_eq!(a.find("rt_hello").unwrap().data, b"\x7fELF hello");
        assert_eq!(a.find("b.o-2").unwrap().data, &[7u8; 33][..]);
        assert!(a.find("empty").unwrap().data.is_empty());
        assert!(a.find("nope").is_none());
        for e in a.entries() {
            let off = e.data.as_ptr() as usize - b.as_ptr() as usize;
            assert_eq!(off % ALIGN, 0, "{}", e.name);
        }
    }

    #[test]
    fn damage_is_named() {
        let b = sample();
        assert_eq!(
            Archive::parse(b"PLINITRX........").unwrap_err(),
            Error::NoMagic
        );
        let mut v = b.clone();
        v[8] = 2;
        assert_eq!(Archive::parse(&v).unwrap_err(), Error::Version(2));
        // Cut inside the second entry's data.
        let cut = 16 + 24 + 16 + 16 + 24 + 10;
        assert_eq!(
            Archive::parse(&b[..cut]).unwrap_err(),
            Error::Truncated { index: 1 }
        );
        let mut v = b.clone();
        let data_at = 16 + 24 + 16;
        v[data_at] ^= 1;
        assert_eq!(
            Archive::parse(&v).unwrap_err(),
            Error::Checksum { index: 0 }
        );
        let mut v = b.clone();
        v[16 + 24] = b'/';
        assert_eq!(Archive::parse(&v).unwrap_err(), Error::BadName { index: 0 });
    }

    #[test]
    fn writer_refuses_bad_names() {
        let e = |name| Entry { name, data: &[] };
        assert_eq!(build(&[e("a/b")]).unwrap_err(), Error::BadName { index: 0 });
        assert_eq!(build(&[e("")]).unwrap_err(), Error::BadName { index: 0 });
        assert_eq!(
            build(&[e("x"), e("x")]).unwrap_err(),
            Error::Duplicate { index: 1 }
        );
        let long = "a".repeat(MAX_NAME + 1);
        assert!(build(&[e(&long)]).is_err());
        assert!(build(&[e("ok")]).is_ok());
    }
}
