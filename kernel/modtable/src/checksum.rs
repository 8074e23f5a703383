//! FNV-1a 64-bit checksum of module bytes (a corruption check, not a MAC).

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a 64 hasher.
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(OFFSET)
    }
}

impl Fnv64 {
    /// Feeds `bytes` into the hash.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(PRIME);
        }
        self.0 = h;
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Checksum of a module: its text, rodata and data slot bytes in that order
/// (each slice is the used part of the slot, padding excluded).
pub fn module_checksum(parts: [&[u8]; 3]) -> u64 {
    let mut h = Fnv64::default();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Published FNV-1a 64 test vectors.
        let mut h = Fnv64::default();
        assert_eq!(h.finish(), 0xcbf29ce484222325);
        h.update(b"a");
        assert_eq!(h.finish(), 0xaf63dc4c8601ec8c);
        let mut h = Fnv64::default();
        h.update(b"foobar");
        assert_eq!(h.finish(), 0x85944171f73967e8);
    }

    #[test]
    fn split_is_concatenation() {
        assert_eq!(
            module_checksum([b"foo", b"", b"bar"]),
            module_checksum([b"foobar", b"", b""])
        );
        assert_ne!(
            module_checksum([b"foobar", b"", b""]),
            module_checksum([b"foobaz", b"", b""])
        );
    }
}
