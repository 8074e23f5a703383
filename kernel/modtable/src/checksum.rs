//! Checksums of module bytes and of the table (a corruption check, not a MAC).
//!
//! [`Wide`] is the checksum of table format 8: sixteen independent 64-bit
//! lanes over little-endian 64-bit words, folded into one value at the end.
//! A part is read in blocks of 32 words; lane `k` takes words `k` and
//! `k + 16` of each block in one step, `h = mix(h ^ a) + b`, where
//! `mix(x) = rotl32(x ^ lo32(x) * K)` with `K` even. `x ^ lo32(x) * K` is a
//! bijection (bit `j` of its low half is bit `j` of `x` flipped by a
//! function of the bits below it; the high half is then `x`'s flipped by a
//! function of the low half), so each step is a bijection of the lane's
//! state, of `a` and of `b`: a change to any one word always changes the
//! result. The parts of one checksum (a module's three classes) are one
//! stream of blocks, each part's length mixed into lane 0 after it, and
//! the last partial block is zero-padded. The lanes are folded with FNV-1a
//! steps and the result goes through the MurmurHash3 finaliser (a
//! bijection with full avalanche).
//!
//! Not every two-word change is caught: as with format 7's
//! `h = ((h ^ a) * P) + b` (and FNV-1a per word), flipping the top bit of
//! a lane's `b` and of the same lane's next `a` cancels, since the top bit
//! of a sum and of an xor are the same. It is a corruption check with the
//! guarantees the tests state, not a MAC.
//!
//! On x86_64 the blocks run in an `asm!` loop: `avx2` (four YMM registers
//! of four lanes) where the CPU has AVX2 and its YMM state is enabled,
//! else `sse2` (eight XMM registers of two lanes), which every x86_64 CPU
//! has ([`simd`] says which); elsewhere in the scalar definition
//! [`blocks_scalar`], and the tests check that all of them agree. The
//! kernel's target is soft-float, so its compiler never uses the vector
//! registers; the boot code enables SSE (CR4.OSFXSR) and, where the CPU
//! has it, the AVX state (CR4.OSXSAVE, XCR0) on every CPU before anything
//! is checked.
//!
//! [`Fnv64`] is plain FNV-1a 64 (byte-wise, and word-wise as the serial
//! checksum of formats 3 and 4), kept as the reference the wide checksum is
//! measured against, and the checksum of the export list and the initrd.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod cpu;
#[cfg(target_arch = "x86_64")]
mod sse2;

#[cfg(target_arch = "x86_64")]
pub use cpu::{Simd, simd};

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

/// Number of independent lanes of [`Wide`].
pub const LANES: usize = 16;

/// Bytes of one [`Wide`] block: two words per lane.
pub const BLOCK: usize = 16 * LANES;

/// The multiplier of [`mix`]: even, so that `x ^ lo32(x) * K` is a
/// bijection (the golden-ratio constant with its low bit cleared).
pub(crate) const K: u32 = 0x9e37_79b8;

/// One FNV-1a step over a 64-bit word.
#[inline(always)]
const fn step(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(PRIME)
}

/// The lane mix of [`Wide`]: `rotl32(x ^ lo32(x) * K)`, a bijection.
#[inline(always)]
fn mix(x: u64) -> u64 {
    (x ^ (x & 0xffff_ffff).wrapping_mul(K as u64)).rotate_left(32)
}

/// One step of [`Wide`] over two words: `mix(h ^ a) + b`.
#[inline(always)]
fn step2(h: u64, a: u64, b: u64) -> u64 {
    mix(h ^ a).wrapping_add(b)
}

/// The MurmurHash3 64-bit finaliser, a bijection.
#[inline(always)]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

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

/// The definition of [`Wide`]'s blocks: `bytes` (whole [`BLOCK`]s) fed to
/// `lanes`, words `k` and `k + 16` of each block to lane `k`.
pub fn blocks_scalar(lanes: &mut [u64; LANES], bytes: &[u8]) {
    debug_assert_eq!(bytes.len() % BLOCK, 0);
    for b in bytes.chunks_exact(BLOCK) {
        let (lo, hi) = b.split_at(BLOCK / 2);
        for (k, lane) in lanes.iter_mut().enumerate() {
            *lane = step2(
                *lane,
                word(&lo[8 * k..8 * k + 8]),
                word(&hi[8 * k..8 * k + 8]),
            );
        }
    }
}

/// [`blocks_scalar`], in the SIMD loop [`simd`] chose on x86_64.
#[inline]
fn blocks(lanes: &mut [u64; LANES], bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    match simd() {
        Simd::Avx2 => avx2::blocks(lanes, bytes),
        Simd::Sse2 => sse2::blocks(lanes, bytes),
    }
    #[cfg(not(target_arch = "x86_64"))]
    blocks_scalar(lanes, bytes);
}

/// The lanes' starting values: apart, so equal words in different lanes
/// never give equal lane states.
const INIT: [u64; LANES] = {
    let mut lanes = [0; LANES];
    let mut i = 0;
    while i < LANES {
        lanes[i] = step(OFFSET, i as u64);
        i += 1;
    }
    lanes
};

/// Incremental sixteen-lane checksum over 64-bit words (see the module
/// documentation). The parts fed to it are one stream of blocks; a block
/// that is not yet whole waits in a buffer.
#[derive(Clone, Debug)]
pub struct Wide {
    lanes: [u64; LANES],
    buf: [u8; BLOCK],
    fill: usize,
}

impl Default for Wide {
    fn default() -> Self {
        Wide {
            lanes: INIT,
            buf: [0; BLOCK],
            fill: 0,
        }
    }
}

impl Wide {
    /// Feeds one part: its bytes continue the stream of [`BLOCK`]s (whole
    /// blocks straight from `bytes`, the rest through the buffer), then its
    /// length goes to lane 0 (one step with `a` the length and `b` zero),
    /// so that moving bytes between parts or appending zeros changes the
    /// result.
    pub fn update(&mut self, bytes: &[u8]) {
        let len = bytes.len() as u64;
        let mut rest = bytes;
        if self.fill > 0 {
            let take = rest.len().min(BLOCK - self.fill);
            self.buf[self.fill..self.fill + take].copy_from_slice(&rest[..take]);
            self.fill += take;
            rest = &rest[take..];
            if self.fill == BLOCK {
                blocks(&mut self.lanes, &self.buf);
                self.fill = 0;
            }
        }
        if self.fill == 0 {
            let whole = rest.len() - rest.len() % BLOCK;
            blocks(&mut self.lanes, &rest[..whole]);
            rest = &rest[whole..];
            self.buf[..rest.len()].copy_from_slice(rest);
            self.fill = rest.len();
        }
        self.lanes[0] = step2(self.lanes[0], len, 0);
    }

    /// The checksum of everything fed so far: a last partial block
    /// zero-padded, then the lanes folded by FNV-1a steps (four chains of
    /// four lanes, each lane rotated by its own amount so that a difference
    /// in the same bit of two lanes cannot cancel, and one chain of the
    /// four), and the result through the MurmurHash3 finaliser [`fmix64`].
    pub fn finish(&self) -> u64 {
        let mut lanes = self.lanes;
        if self.fill > 0 {
            let mut last = self.buf;
            last[self.fill..].fill(0);
            blocks(&mut lanes, &last);
        }
        let mut groups = [0u64; 4];
        for (j, (g, four)) in groups.iter_mut().zip(lanes.chunks_exact(4)).enumerate() {
            *g = four
                .iter()
                .enumerate()
                .fold(step(OFFSET, j as u64), |h, (i, &l)| {
                    step(h, l.rotate_left((16 * i + 4 * j) as u32))
                });
        }
        fmix64(groups.iter().fold(OFFSET, |h, &g| step(h, g)))
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
    extern crate std;

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
    fn the_lane_mix_is_a_bijection() {
        // Inverts `mix`: the halves swapped back, then the low half solved
        // bit by bit from the bottom (each pass fixes one more bit, since
        // bit `j` of `lo32(x) * K` depends on bits below `j` only when `K`
        // is even), then the high half.
        fn unmix(y: u64) -> u64 {
            let t = y.rotate_right(32);
            let v = t & 0xffff_ffff;
            let mut lo = v;
            for _ in 0..32 {
                lo = v ^ (lo.wrapping_mul(K as u64) & 0xffff_ffff);
            }
            let hi = (t >> 32) ^ (lo.wrapping_mul(K as u64) >> 32);
            hi << 32 | lo
        }
        let mut r = Rng(11);
        for x in (0..20_000)
            .map(|_| r.next())
            .chain([0, u64::MAX, 1 << 63, 1])
        {
            assert_eq!(unmix(mix(x)), x, "{x:#x}");
        }
    }

    #[test]
    fn the_simd_blocks_are_the_scalar_definition() {
        let mut r = Rng(5);
        for n in [1, 2, 3, 7, 40] {
            let bytes = r.bytes(n * BLOCK);
            let mut lanes = [0u64; LANES];
            lanes.iter_mut().for_each(|l| *l = r.next());
            let mut scalar = lanes;
            blocks_scalar(&mut scalar, &bytes);
            for (name, run) in simd_loops() {
                let mut l = lanes;
                run(&mut l, &bytes);
                assert_eq!(l, scalar, "{name}, {n} blocks");
            }
        }
        // Unaligned input: the blocks may start anywhere.
        let bytes = r.bytes(3 * BLOCK + 1);
        let mut a = [7u64; LANES];
        blocks_scalar(&mut a, &bytes[1..]);
        for (name, run) in simd_loops() {
            let mut b = [7u64; LANES];
            run(&mut b, &bytes[1..]);
            assert_eq!(a, b, "{name}, unaligned");
        }
    }

    type Loop = fn(&mut [u64; LANES], &[u8]);

    /// Every block loop this machine can run (AVX2 only where [`simd`]
    /// found it), so the test says which it could not check.
    fn simd_loops() -> alloc::vec::Vec<(&'static str, Loop)> {
        let mut v: alloc::vec::Vec<(&'static str, Loop)> = alloc::vec![("dispatch", blocks)];
        #[cfg(target_arch = "x86_64")]
        {
            v.push(("sse2", sse2::blocks));
            if simd() == Simd::Avx2 {
                v.push(("avx2", avx2::blocks));
            } else {
                std::eprintln!("note: this CPU has no usable AVX2; the AVX2 loop is not checked");
            }
        }
        v
    }

    #[test]
    fn differs_from_the_serial_checksum() {
        let m = [&b"some module text"[..], b"ro", b"d"];
        assert_ne!(module_checksum(m), serial_module_checksum(m));
    }
}
