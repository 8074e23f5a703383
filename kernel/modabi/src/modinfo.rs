//! The `.modinfo` section a module object carries, and the entry symbols.
//!
//! The `module!` macro of the module API emits a `.modinfo` section made of
//! NUL-terminated `key=value` strings:
//!
//! | key | count | meaning |
//! |---|---|---|
//! | `abi` | exactly one | module ABI version, [`ABI_VERSION`] |
//! | `name` | exactly one | the module's name |
//! | `depends` | any | a module that must be probed (and kept) first |
//! | `export` | any | a symbol this module exports to later modules |
//! | `export_sig` | any | `NAME:SIGNATURE` of a function it exports (`export_fn!`) |
//! | `import_sig` | any | `NAME:SIGNATURE` of a function it imports, from another module (`import_fn!`) or the kernel (every service, as module-api declares it) |
//!
//! Signatures are `stringify!` of `fn(types) -> ret` and are compared by
//! [`crate::signature_hash`], which ignores white space.
//!
//! The prelinker reads it and does not place it in any region.

/// Name of the section holding a module's metadata.
pub const MODINFO_SECTION: &str = ".modinfo";
/// Module ABI version written by the module API and checked by the prelinker
/// (2: signature entries, and a signature hash in every kernel export).
pub const ABI_VERSION: u32 = 2;
/// The `abi=` entry (NUL-terminated) that the module API writes: the one
/// spelling of [`ABI_VERSION`] in a `.modinfo` section.
pub const ABI_ENTRY: &str = "abi=2\0";
const _: () = assert!(
    is_abi_entry(ABI_ENTRY, ABI_VERSION),
    "ABI_ENTRY must spell ABI_VERSION"
);

/// Whether `v`, the value of an `abi=` entry, is exactly the one spelling
/// of [`ABI_VERSION`] (not `+2`, `02` or ` 2`, which a number parser would
/// take).
pub fn is_abi_value(v: &str) -> bool {
    ABI_ENTRY
        .strip_prefix("abi=")
        .and_then(|r| r.strip_suffix('\0'))
        == Some(v)
}

/// Whether `entry` is `abi=V\0` with `V` the decimal digits of `version`.
pub const fn is_abi_entry(entry: &str, version: u32) -> bool {
    let b = entry.as_bytes();
    if b.len() < 6 || b[0] != b'a' || b[1] != b'b' || b[2] != b'i' || b[3] != b'=' {
        return false;
    }
    if b[b.len() - 1] != 0 || (b[4] == b'0' && b.len() > 6) {
        return false;
    }
    let mut v: u64 = 0;
    let mut i = 4;
    while i < b.len() - 1 {
        if !b[i].is_ascii_digit() || v > u32::MAX as u64 {
            return false;
        }
        v = v * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    v == version as u64
}
/// The longest module name, in bytes.
pub const MAX_NAME_LEN: usize = 32;

/// Whether `name` is a valid module name: `[a-z][a-z0-9_]{0,31}`, a
/// lowercase ASCII letter followed by at most 31 lowercase letters, digits
/// or underscores (checked by the module API at compile time, by the
/// prelinker at link time and by the runtime loader).
pub const fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_LEN || !b[0].is_ascii_lowercase() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

/// Global symbol of a module's probe: `extern "C" fn() -> i32`, 0 for success.
pub const PROBE_SYMBOL: &str = "__module_probe";
/// Global symbol of a module's optional self-test: `extern "C" fn() -> i32`.
pub const SELFTEST_SYMBOL: &str = "__module_selftest";

/// A malformed `.modinfo` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModinfoError {
    /// The section does not end with a NUL byte.
    Unterminated,
    /// An entry is not valid UTF-8.
    NotUtf8 {
        /// Byte offset of the entry.
        offset: usize,
    },
    /// An entry has no `=`.
    NoEquals {
        /// Byte offset of the entry.
        offset: usize,
    },
}

impl core::fmt::Display for ModinfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ModinfoError::Unterminated => write!(f, ".modinfo does not end with a NUL byte"),
            ModinfoError::NotUtf8 { offset } => {
                write!(f, ".modinfo entry at offset {offset:#x} is not UTF-8")
            }
            ModinfoError::NoEquals { offset } => {
                write!(f, ".modinfo entry at offset {offset:#x} is not key=value")
            }
        }
    }
}

/// Iterates over the `(key, value)` entries of a `.modinfo` section. Runs of
/// NUL bytes (alignment padding between entries) are skipped.
pub fn entries(bytes: &[u8]) -> Entries<'_> {
    Entries { bytes, pos: 0 }
}

/// Iterator returned by [`entries`].
pub struct Entries<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<(&'a str, &'a str), ModinfoError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.bytes.get(self.pos) == Some(&0) {
            self.pos += 1;
        }
        if self.pos >= self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.bytes[start..];
        let Some(len) = rest.iter().position(|&b| b == 0) else {
            self.pos = self.bytes.len();
            return Some(Err(ModinfoError::Unterminated));
        };
        self.pos = start + len + 1;
        let Ok(s) = core::str::from_utf8(&rest[..len]) else {
            return Some(Err(ModinfoError::NotUtf8 { offset: start }));
        };
        Some(
            s.split_once('=')
                .ok_or(ModinfoError::NoEquals { offset: start }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_abi_entry_spells_the_version() {
        assert!(is_abi_entry(ABI_ENTRY, ABI_VERSION));
        assert!(is_abi_value(&ABI_ENTRY[4..ABI_ENTRY.len() - 1]));
        for v in ["+2", "02", " 2", "2 ", "3", ""] {
            assert!(!is_abi_value(v), "{v:?}");
        }
        assert!(!is_abi_entry(ABI_ENTRY, ABI_VERSION + 1));
        assert!(is_abi_entry("abi=17\0", 17));
        for bad in [
            "abi=2",
            "abi=\0",
            "abi=02\0",
            "abj=2\0",
            "abi=2x\0",
            "abi=99999999999\0",
        ] {
            assert!(!is_abi_entry(bad, 2), "{bad:?}");
        }
    }

    #[test]
    fn parses_entries_and_skips_padding() {
        let b = b"abi=1\0name=uart\0\0\0depends=pci\0export=a_b\0";
        let v: [(&str, &str); 4] = [
            ("abi", "1"),
            ("name", "uart"),
            ("depends", "pci"),
            ("export", "a_b"),
        ];
        let mut it = entries(b);
        for want in v {
            assert_eq!(it.next(), Some(Ok(want)));
        }
        assert_eq!(it.next(), None);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            entries(b"name=x").next(),
            Some(Err(ModinfoError::Unterminated))
        );
        assert_eq!(
            entries(b"\0junk\0").next(),
            Some(Err(ModinfoError::NoEquals { offset: 1 }))
        );
        assert_eq!(
            entries(b"k=\xff\0").next(),
            Some(Err(ModinfoError::NotUtf8 { offset: 0 }))
        );
    }
}
