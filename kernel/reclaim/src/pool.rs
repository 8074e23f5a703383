//! A pool of address ranges for module bytes loaded after boot: the
//! trap-filled tail of a class's last live huge page, fresh huge pages
//! taken later, and bytes of unloaded modules. First fit at the requested
//! alignment (at least [`PACK_ALIGN`]); what an allocation leaves before or
//! after itself stays free, so [`Pool::used`] grows by exactly the bytes
//! asked for and a free gives exactly them back.
//!
//! Only arithmetic: the kernel fills and maps the bytes.

use crate::plan::Range;
use crate::{PACK_ALIGN, align_up};
use alloc::vec::Vec;

/// Why a pool operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// The range overlaps bytes the pool already manages.
    Overlap(u64),
    /// A free of bytes that are not allocated (double free, or outside).
    NotAllocated(u64),
    /// An empty or wrapping range.
    Empty(u64),
    /// A removal of bytes not all free (some allocated, or outside).
    NotFree(u64),
}

/// Free ranges over the bytes a pool manages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pool {
    /// Free ranges, sorted and disjoint (adjacent ones merged).
    free: Vec<Range>,
    /// Every range ever added (sorted, disjoint), for checks.
    managed: Vec<Range>,
    size: u64,
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Pool {
        Pool::default()
    }

    /// Adds `[start, end)` to the pool, all free.
    pub fn add(&mut self, start: u64, end: u64) -> Result<(), PoolError> {
        if end <= start {
            return Err(PoolError::Empty(start));
        }
        if self.managed.iter().any(|&(s, e)| start < e && s < end) {
            return Err(PoolError::Overlap(start));
        }
        insert_merged(&mut self.managed, (start, end));
        insert_merged(&mut self.free, (start, end));
        self.size += end - start;
        Ok(())
    }

    /// Takes `len` bytes at an address aligned to `max(align, 64)` (a power
    /// of two), first fit; `None` if no free range holds them.
    pub fn alloc(&mut self, len: u64, align: u64) -> Option<u64> {
        if len == 0 {
            return None;
        }
        let align = align.max(PACK_ALIGN);
        let (i, at) = self.free.iter().enumerate().find_map(|(i, &(s, e))| {
            let at = align_up(s, align);
            (at.checked_add(len)? <= e).then_some((i, at))
        })?;
        let (s, e) = self.free.remove(i);
        if at + len < e {
            self.free.insert(i, (at + len, e));
        }
        if s < at {
            self.free.insert(i, (s, at));
        }
        Some(at)
    }

    /// Gives back `len` bytes at `at` (all of them allocated, inside the pool).
    pub fn free(&mut self, at: u64, len: u64) -> Result<(), PoolError> {
        let end = at
            .checked_add(len)
            .filter(|&e| e > at)
            .ok_or(PoolError::Empty(at))?;
        let inside = self.managed.iter().any(|&(s, e)| at >= s && end <= e);
        let overlaps_free = self.free.iter().any(|&(s, e)| at < e && s < end);
        if !inside || overlaps_free {
            return Err(PoolError::NotAllocated(at));
        }
        insert_merged(&mut self.free, (at, end));
        Ok(())
    }

    /// Takes `[start, end)` out of the pool: it stops managing those bytes
    /// (for example a fresh page given back to the frame allocator). All of
    /// them must be free, or nothing changes.
    pub fn remove(&mut self, start: u64, end: u64) -> Result<(), PoolError> {
        if end <= start {
            return Err(PoolError::Empty(start));
        }
        let Some(i) = self.free.iter().position(|&(s, e)| s <= start && end <= e) else {
            return Err(PoolError::NotFree(start));
        };
        let m = self
            .managed
            .iter()
            .position(|&(s, e)| s <= start && end <= e)
            .expect("free bytes are managed");
        cut(&mut self.free, i, start, end);
        cut(&mut self.managed, m, start, end);
        self.size -= end - start;
        Ok(())
    }

    /// Bytes the pool manages.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Free bytes (alignment gaps included).
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().map(|(s, e)| e - s).sum()
    }

    /// Allocated bytes.
    pub fn used(&self) -> u64 {
        self.size - self.free_bytes()
    }

    /// The free ranges, sorted.
    pub fn free_ranges(&self) -> &[Range] {
        &self.free
    }

    /// The ranges the pool manages, sorted (adjacent ones merged).
    pub fn ranges(&self) -> &[Range] {
        &self.managed
    }

    /// The largest free range's length.
    pub fn largest_free(&self) -> u64 {
        self.free.iter().map(|(s, e)| e - s).max().unwrap_or(0)
    }

    /// Whether `addr` lies in bytes the pool manages.
    pub fn contains(&self, addr: u64) -> bool {
        self.managed.iter().any(|&(s, e)| addr >= s && addr < e)
    }
}

/// Cuts `[start, end)` out of range `v[i]`, which holds it, leaving the
/// parts before and after.
fn cut(v: &mut Vec<Range>, i: usize, start: u64, end: u64) {
    let (s, e) = v.remove(i);
    if end < e {
        v.insert(i, (end, e));
    }
    if s < start {
        v.insert(i, (s, start));
    }
}

/// Inserts `r` into sorted disjoint `v`, merging it with neighbours it
/// touches (the caller has checked it overlaps none).
fn insert_merged(v: &mut Vec<Range>, r: Range) {
    let i = v.partition_point(|&(s, _)| s < r.0);
    v.insert(i, r);
    if i + 1 < v.len() && v[i].1 == v[i + 1].0 {
        v[i].1 = v[i + 1].1;
        v.remove(i + 1);
    }
    if i > 0 && v[i - 1].1 == v[i].0 {
        v[i - 1].1 = v[i].1;
        v.remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn first_fit_at_cache_lines_and_exact_accounting() {
        let mut p = Pool::new();
        p.add(0x1010, 0x3000).unwrap();
        assert_eq!(p.size(), 0x1ff0);
        let a = p.alloc(100, 16).unwrap();
        assert_eq!(a, 0x1040, "rounded up to 64 bytes");
        assert_eq!(p.used(), 100);
        let b = p.alloc(10, 1).unwrap();
        assert_eq!(b, 0x1040 + 128);
        assert_eq!(p.used(), 110);
        // A larger alignment is honoured.
        let c = p.alloc(8, 4096).unwrap();
        assert_eq!(c, 0x2000);
        assert_eq!(p.used(), 118);
        // Frees give back exactly what was taken, and merge.
        p.free(b, 10).unwrap();
        p.free(a, 100).unwrap();
        p.free(c, 8).unwrap();
        assert_eq!(p.used(), 0);
        assert_eq!(p.free_ranges(), &[(0x1010, 0x3000)]);
    }

    #[test]
    fn full_pool_and_growth() {
        let mut p = Pool::new();
        p.add(0, 256).unwrap();
        assert!(p.alloc(257, 64).is_none());
        assert_eq!(p.alloc(256, 64), Some(0));
        assert!(p.alloc(1, 64).is_none());
        assert_eq!(p.largest_free(), 0);
        // A fresh range, not adjacent.
        p.add(0x20_0000, 0x40_0000).unwrap();
        assert_eq!(p.alloc(100, 64), Some(0x20_0000));
        assert_eq!(p.ranges(), &[(0, 256), (0x20_0000, 0x40_0000)]);
        assert!(p.contains(0x3f_ffff) && !p.contains(0x40_0000) && !p.contains(300));
        assert_eq!(
            p.add(0x30_0000, 0x50_0000),
            Err(PoolError::Overlap(0x30_0000))
        );
    }

    #[test]
    fn bad_frees_are_refused() {
        let mut p = Pool::new();
        p.add(0x1000, 0x2000).unwrap();
        let a = p.alloc(64, 64).unwrap();
        p.free(a, 64).unwrap();
        assert_eq!(
            p.free(a, 64),
            Err(PoolError::NotAllocated(a)),
            "double free"
        );
        assert_eq!(p.free(0x5000, 8), Err(PoolError::NotAllocated(0x5000)));
        assert_eq!(p.free(a, 0), Err(PoolError::Empty(a)));
        assert_eq!(p.used(), 0);
    }

    #[test]
    fn only_wholly_free_bytes_are_removed() {
        let mut p = Pool::new();
        p.add(0x1000, 0x2000).unwrap();
        // Two fresh pages side by side merge into one managed range.
        p.add(0x20_0000, 0x40_0000).unwrap();
        p.add(0x40_0000, 0x60_0000).unwrap();
        assert_eq!(p.ranges(), &[(0x1000, 0x2000), (0x20_0000, 0x60_0000)]);
        let a = p.alloc(0x1000, 64).unwrap();
        assert_eq!(a, 0x1000);
        let b = p.alloc(0x1000, 0x20_0000).unwrap();
        assert_eq!(b, 0x20_0000);
        // The page holding `b` is not wholly free; the next one is.
        assert_eq!(
            p.remove(0x20_0000, 0x40_0000),
            Err(PoolError::NotFree(0x20_0000))
        );
        assert_eq!(p.remove(0x7000, 0x8000), Err(PoolError::NotFree(0x7000)));
        assert_eq!(
            p.remove(0x40_0000, 0x40_0000),
            Err(PoolError::Empty(0x40_0000))
        );
        let size = p.size();
        p.remove(0x40_0000, 0x60_0000).unwrap();
        assert_eq!(p.size(), size - 0x20_0000);
        assert_eq!(p.ranges(), &[(0x1000, 0x2000), (0x20_0000, 0x40_0000)]);
        assert!(!p.contains(0x40_0000));
        assert_eq!(p.used(), 0x2000);
        // A removed range can be added again; a cut in the middle leaves
        // both sides.
        p.add(0x40_0000, 0x60_0000).unwrap();
        p.free(b, 0x1000).unwrap();
        p.remove(0x30_0000, 0x50_0000).unwrap();
        assert_eq!(
            p.ranges(),
            &[
                (0x1000, 0x2000),
                (0x20_0000, 0x30_0000),
                (0x50_0000, 0x60_0000)
            ]
        );
        assert_eq!(
            p.free_ranges(),
            &[(0x20_0000, 0x30_0000), (0x50_0000, 0x60_0000)]
        );
        assert_eq!(p.used() + p.free_bytes(), p.size());
        assert_eq!(p.alloc(0x10_0001, 64), None, "no free range spans the cut");
    }

    #[test]
    fn random_alloc_free_keeps_the_books() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut p = Pool::new();
        p.add(0x10_0000, 0x12_0000).unwrap();
        let mut live: Vec<(u64, u64)> = vec![];
        for _ in 0..2000 {
            if next(3) == 0 && !live.is_empty() {
                let (a, l) = live.swap_remove(next(live.len() as u64) as usize);
                p.free(a, l).unwrap();
            } else {
                let l = 1 + next(3000);
                if let Some(a) = p.alloc(l, 1 << next(8)) {
                    assert!(a % 64 == 0);
                    assert!(live.iter().all(|&(b, m)| a + l <= b || b + m <= a));
                    live.push((a, l));
                }
            }
            assert_eq!(p.used(), live.iter().map(|x| x.1).sum::<u64>());
            assert_eq!(p.used() + p.free_bytes(), p.size());
        }
    }
}
