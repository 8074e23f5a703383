//! Checksums of module bytes and of the table (a corruption check, not a MAC).
//!
//! [`Wide`] is the checksum of table format 7: eight independent lanes over
//! little-endian 64-bit words, folded into one value at the end. A part is
//! read in blocks of 16 words; lane `k` takes words `k` and `k + 8` of each
//! block in one step, `h = ((h ^ a) * P) + b`: the word-wise FNV-1a step
//! of [`Fnv64::update_words`] on `a`, then `b` added. Each step is a
//! bijection of the lane's state, of `a` and of `b`, so a change to any one
//! word always changes the result, and every word is multiplied into its
//! lane's state at least once more (`b` by the lane's next step or by the
//! fold). The eight multiply chains are independent, so the CPU overlaps
//! them instead of waiting on one serial chain, and one multiply covers 16
//! bytes where FNV-1a needs one per 8 (format 5's eight lanes) or waits for
//! each (the serial checksum of formats 3 and 4).
//!
//! [`Fnv64`] is plain FNV-1a 64 (byte-wise, and word-wise as the serial
//! checksum of formats 3 and 4), kept as the reference the wide checksum is
//! measured against.

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

    /// Feeds `bytes` as little-endian 64-bit words (a last partial word is
    /// zero-padded, and its length mixed in): the same FNV-1a step per word
    /// instead of per byte, one serial multiply chain. The module checksum
    /// of table formats 3 and 4 ([`serial_module_checksum`]).
    pub fn update_words(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            h = step(h, word(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            h = step(h, tail_word(rest));
        }
        // The length keeps "ab" + "" and "a" + "b" apart across parts.
        self.0 = step(h, bytes.len() as u64);
    }
}

/// The module checksum of table formats 3 and 4: the three parts through one
/// serial [`Fnv64::update_words`] chain. Not used by the table any more; the
/// native replay times it beside [`module_checksum`].
pub fn serial_module_checksum(parts: [&[u8]; 3]) -> u64 {
    let mut h = Fnv64::default();
    for p in parts {
        h.update_words(p);
    }
    h.finish()
}

/// Number of independent FNV-1a lanes of [`Wide`].
pub const LANES: usize = 8;

/// One FNV-1a step over a 64-bit word.
#[inline(always)]
fn step(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(PRIME)
}

/// One step of [`Wide`] over two words: FNV-1a on `a`, then `b` added.
#[inline(always)]
fn step2(h: u64, a: u64, b: u64) -> u64 {
    step(h, a).wrapping_add(b)
}

/// Bytes of one [`Wide`] block: two words per lane.
pub const BLOCK: usize = 16 * LANES;

#[inline(always)]
fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("an 8-byte word"))
}

/// A last partial word: zero-padded, its length in the top byte.
fn tail_word(rest: &[u8]) -> u64 {
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    u64::from_le_bytes(last) ^ (rest.len() as u64) << 56
}

/// Incremental eight-lane FNV-1a checksum over 64-bit words (see the
/// module documentation).
#[derive(Clone, Copy, Debug)]
pub struct Wide {
    lanes: [u64; LANES],
}

impl Default for Wide {
    fn default() -> Self {
        // Lanes start apart, so equal words in different lanes never give
        // equal lane states.
        let mut lanes = [OFFSET; LANES];
        for (i, l) in lanes.iter_mut().enumerate() {
            *l = step(OFFSET, i as u64);
        }
        Wide { lanes }
    }
}

impl Wide {
    /// Feeds one part: its whole [`BLOCK`]s (words `k` and `k + 8` of a
    /// block to lane `k`), then its remaining words and a zero-padded
    /// partial word (with its length) to lanes 0, 1, ..., 7, 0, ... in turn, one word
    /// per FNV-1a step, then the part's length to every lane, so that
    /// moving bytes between parts changes the result.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut l = self.lanes;
        let mut blocks = bytes.chunks_exact(BLOCK);
        for b in &mut blocks {
            let (lo, hi) = b.split_at(BLOCK / 2);
            for (k, lane) in l.iter_mut().enumerate() {
                *lane = step2(
                    *lane,
                    word(&lo[8 * k..8 * k + 8]),
                    word(&hi[8 * k..8 * k + 8]),
                );
            }
        }
        let rest = blocks.remainder();
        let mut words = rest.chunks_exact(8);
        let mut k = 0;
        for w in &mut words {
            l[k % LANES] = step(l[k % LANES], word(w));
            k += 1;
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            l[k % LANES] = step(l[k % LANES], tail_word(tail));
        }
        for x in &mut l {
            *x = step(*x, bytes.len() as u64);
        }
        self.lanes = l;
    }

    /// The checksum of everything fed so far: the lanes folded by one more
    /// FNV-1a chain, each lane rotated by its own amount first (so that a
    /// difference in the same bit of two lanes cannot cancel).
    pub fn finish(&self) -> u64 {
        self.lanes
            .iter()
            .enumerate()
            .fold(OFFSET, |h, (i, &l)| step(h, l.rotate_left(8 * i as u32)))
    }
}

/// Checksum of a module: its text, rodata and data slot bytes in that order
/// (each slice is the used part of the slot, padding excluded), through one
/// [`Wide`] checksum.
pub fn module_checksum(parts: [&[u8]; 3]) -> u64 {
    let mut h = Wide::default();
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

    /// A small deterministic generator (xorshift64*), so the property tests
    /// need no dependency and always test the same cases.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Module-like bytes: random words mixed with runs of zeros and
        /// repeated words (padding, tables), as in real module classes.
        fn bytes(&mut self, len: usize) -> alloc::vec::Vec<u8> {
            let mut v = alloc::vec::Vec::with_capacity(len);
            while v.len() < len {
                let w = match self.below(4) {
                    0 => 0,
                    1 => 0xcccc_cccc_cccc_cccc,
                    _ => self.next(),
                };
                v.extend_from_slice(&w.to_le_bytes());
            }
            v.truncate(len);
            v
        }
    }

    extern crate alloc;

    /// Random modules: three parts with lengths that hit whole blocks,
    /// whole words and partial words.
    fn modules() -> impl Iterator<Item = [alloc::vec::Vec<u8>; 3]> {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        (0..48).map(move |i| {
            let len = |r: &mut Rng, max: usize| match i % 4 {
                0 => BLOCK * r.below(max / BLOCK + 1),
                1 => 8 * r.below(max / 8 + 1),
                _ => r.below(max + 1),
            };
            let (t, ro, d) = (len(&mut r, 1500), len(&mut r, 700), len(&mut r, 130));
            [r.bytes(t), r.bytes(ro), r.bytes(d)]
        })
    }

    fn sum(m: &[alloc::vec::Vec<u8>; 3]) -> u64 {
        module_checksum([&m[0], &m[1], &m[2]])
    }

    #[test]
    fn every_single_byte_flip_is_caught() {
        let mut r = Rng(7);
        for mut m in modules() {
            let base = sum(&m);
            for p in 0..3 {
                for i in 0..m[p].len() {
                    // A random non-zero change of the byte, and its top bit.
                    for x in [1 + r.below(255) as u8, 0x80] {
                        m[p][i] ^= x;
                        assert_ne!(sum(&m), base, "part {p} byte {i} ^ {x:#x}");
                        m[p][i] ^= x;
                    }
                }
            }
            assert_eq!(sum(&m), base);
        }
    }

    #[test]
    fn every_swap_of_two_different_words_is_caught() {
        for m in modules() {
            let base = sum(&m);
            for p in 0..3 {
                let words = m[p].len() / 8;
                for a in 0..words {
                    // Near pairs (every lane against every other), and one
                    // far pair per word.
                    for b in (a + 1..words.min(a + 40)).chain([words - 1]) {
                        if b <= a {
                            continue;
                        }
                        let (x, y) = (a * 8, b * 8);
                        if m[p][x..x + 8] == m[p][y..y + 8] {
                            continue;
                        }
                        let mut swapped = m.clone();
                        swapped[p][x..x + 8].copy_from_slice(&m[p][y..y + 8]);
                        swapped[p][y..y + 8].copy_from_slice(&m[p][x..x + 8]);
                        assert_ne!(sum(&swapped), base, "part {p} words {a} and {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn boundaries_and_lengths_count() {
        let base = module_checksum([b"0123456789abcdef-x", b"r", b""]);
        // Moving bytes between classes, or appending zeros, changes it.
        assert_ne!(module_checksum([b"0123456789abcdef-", b"xr", b""]), base);
        assert_ne!(module_checksum([b"0123456789abcdef-x\0", b"r", b""]), base);
        assert_ne!(module_checksum([b"0123456789abcdef-x", b"", b"r"]), base);
        assert_eq!(module_checksum([b"0123456789abcdef-x", b"r", b""]), base);
        // Zeros of every length up to 200, split between text and rodata in
        // up to three ways: all different.
        let zeros = [0u8; 200];
        let mut seen = alloc::vec::Vec::new();
        for n in 0..200 {
            let mut splits = [0, n / 2, n];
            splits.sort_unstable();
            let mut last = None;
            for split in splits {
                if last != Some(split) {
                    seen.push(module_checksum([&zeros[..split], &zeros[split..n], b""]));
                }
                last = Some(split);
            }
        }
        let all = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), all);
    }

    #[test]
    fn every_word_of_a_block_counts() {
        // A change in any one of the sixteen words of a block, alone,
        // changes the result (a lane left out of the fold, or a word left
        // out of a step, would not).
        let block = [0x11u8; BLOCK];
        let base = module_checksum([&block, b"", b""]);
        for k in 0..BLOCK / 8 {
            let mut b = block;
            b[8 * k + 3] ^= 1;
            assert_ne!(module_checksum([&b, b"", b""]), base, "word {k}");
        }
    }

    #[test]
    fn differs_from_the_serial_checksum() {
        let m = [&b"some module text"[..], b"ro", b"d"];
        assert_ne!(module_checksum(m), serial_module_checksum(m));
    }
}
