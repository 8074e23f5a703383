//! Which pages of a class region stay mapped and which are freed, per policy,
//! and how the freed bytes split into failed modules, padding and tail.

use crate::policy::Policy;
use crate::{PAGE_4K, align_down, align_up};
use alloc::vec::Vec;

/// Where one module's bytes of one class are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Address of the module's slot as prelinked.
    pub slot_start: u64,
    /// Bytes reserved for the slot.
    pub slot_size: u64,
    /// Bytes the module uses.
    pub used: u64,
    /// Where the bytes live after boot if the module was kept, else `None`.
    pub live_at: Option<u64>,
}

/// A half-open address range `[start, end)`.
pub type Range = (u64, u64);

/// The outcome for one class region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionPlan {
    /// Page-aligned ranges that stay mapped (sorted, merged).
    pub live: Vec<Range>,
    /// Page-aligned ranges whose frames go back to the page allocator.
    pub freed: Vec<Range>,
    /// Freed bytes that belonged to expunged modules' slots.
    pub failed_bytes: u64,
    /// Freed bytes that were padding of kept modules (net of the partly used
    /// last page; negative if packing alignment cost more than it saved).
    pub padding_bytes: i64,
    /// Freed bytes beyond the last slot, never used by any module.
    pub tail_bytes: u64,
}

impl RegionPlan {
    /// Total bytes freed.
    pub fn reclaimed_bytes(&self) -> u64 {
        self.freed.iter().map(|(s, e)| e - s).sum()
    }
}

fn overlap(a: Range, b: Range) -> u64 {
    let s = a.0.max(b.0);
    let e = a.1.min(b.1);
    e.saturating_sub(s)
}

/// Merges sorted-or-not ranges into a sorted list of disjoint ranges.
fn merge(mut v: Vec<Range>) -> Vec<Range> {
    v.retain(|r| r.1 > r.0);
    v.sort_unstable();
    let mut out: Vec<Range> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
            _ => out.push(r),
        }
    }
    out
}

/// The complement of sorted disjoint `live` inside `region`.
fn complement(region: Range, live: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    let mut at = region.0;
    for &(s, e) in live {
        if s > at {
            out.push((at, s));
        }
        at = at.max(e);
    }
    if at < region.1 {
        out.push((at, region.1));
    }
    out
}

/// Plans one class region of `size` bytes at `base` (both page-aligned).
pub fn plan_region(policy: Policy, base: u64, size: u64, modules: &[Placement]) -> RegionPlan {
    let region = (base, base + size);
    let slots_end = modules
        .iter()
        .map(|m| m.slot_start + m.slot_size)
        .max()
        .unwrap_or(base);
    let live = match policy {
        Policy::Keep => {
            return RegionPlan {
                live: alloc::vec![region],
                ..RegionPlan::default()
            };
        }
        Policy::Holes => merge(
            modules
                .iter()
                .filter(|m| m.live_at.is_some() && m.used > 0)
                .map(|m| {
                    (
                        align_down(m.slot_start, PAGE_4K),
                        align_up(m.slot_start + m.used, PAGE_4K),
                    )
                })
                .collect(),
        ),
        Policy::Compact => {
            let end = modules
                .iter()
                .filter_map(|m| m.live_at.map(|a| a + m.used))
                .max()
                .unwrap_or(base);
            merge(alloc::vec![(base, align_up(end, PAGE_4K))])
        }
    };
    let freed = complement(region, &live);
    let reclaimed: u64 = freed.iter().map(|(s, e)| e - s).sum();
    let (failed_bytes, tail_bytes) = match policy {
        Policy::Keep => unreachable!(),
        Policy::Holes => {
            let failed = modules
                .iter()
                .filter(|m| m.live_at.is_none())
                .map(|m| {
                    let slot = (m.slot_start, m.slot_start + m.slot_size);
                    freed.iter().map(|&f| overlap(f, slot)).sum::<u64>()
                })
                .sum();
            let tail = freed
                .iter()
                .map(|&f| overlap(f, (slots_end, region.1)))
                .sum();
            (failed, tail)
        }
        Policy::Compact => {
            let failed = modules
                .iter()
                .filter(|m| m.live_at.is_none())
                .map(|m| m.slot_size)
                .sum();
            (failed, region.1 - slots_end.max(base))
        }
    };
    RegionPlan {
        live,
        freed,
        failed_bytes,
        padding_bytes: reclaimed as i64 - failed_bytes as i64 - tail_bytes as i64,
        tail_bytes,
    }
}

/// Bytes a page-aligned layout (every non-empty class of every module
/// rounded up to 4 KiB, as loadable modules are) needs for these sizes.
pub fn page_aligned_bytes(sizes: impl IntoIterator<Item = u64>) -> u64 {
    sizes.into_iter().map(|s| align_up(s, PAGE_4K)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const BASE: u64 = 0xffff_ffff_8040_0000;
    const SIZE: u64 = 2 << 20;

    /// Three modules in 4 KiB slots: kept (5000 B), failed (3000 B), kept (100 B).
    fn three(policy: Policy) -> Vec<Placement> {
        let moved = policy == Policy::Compact;
        vec![
            Placement {
                slot_start: BASE,
                slot_size: 8192,
                used: 5000,
                live_at: Some(BASE),
            },
            Placement {
                slot_start: BASE + 8192,
                slot_size: 4096,
                used: 3000,
                live_at: None,
            },
            Placement {
                slot_start: BASE + 12288,
                slot_size: 4096,
                used: 100,
                live_at: Some(if moved { BASE + 5056 } else { BASE + 12288 }),
            },
        ]
    }

    #[test]
    fn keep_frees_nothing() {
        let p = plan_region(Policy::Keep, BASE, SIZE, &three(Policy::Keep));
        assert_eq!(p.live, vec![(BASE, BASE + SIZE)]);
        assert!(p.freed.is_empty());
        assert_eq!(p.reclaimed_bytes(), 0);
    }

    #[test]
    fn holes_frees_failed_slots_and_tail_in_place() {
        let p = plan_region(Policy::Holes, BASE, SIZE, &three(Policy::Holes));
        assert_eq!(
            p.live,
            vec![(BASE, BASE + 8192), (BASE + 12288, BASE + 16384)]
        );
        assert_eq!(
            p.freed,
            vec![(BASE + 8192, BASE + 12288), (BASE + 16384, BASE + SIZE)]
        );
        assert_eq!(p.failed_bytes, 4096);
        assert_eq!(p.tail_bytes, SIZE - 16384);
        assert_eq!(p.padding_bytes, 0);
        assert_eq!(p.reclaimed_bytes(), SIZE - 12288);
    }

    #[test]
    fn compact_frees_everything_above_the_packed_end() {
        let p = plan_region(Policy::Compact, BASE, SIZE, &three(Policy::Compact));
        // Live bytes end at BASE + 5056 + 100 = BASE + 5156: two pages.
        assert_eq!(p.live, vec![(BASE, BASE + 8192)]);
        assert_eq!(p.freed, vec![(BASE + 8192, BASE + SIZE)]);
        assert_eq!(p.failed_bytes, 4096);
        assert_eq!(p.tail_bytes, SIZE - 16384);
        // Kept slots hold 12288 B for 5100 B used; 8192 B are mapped.
        assert_eq!(p.padding_bytes, 4096);
        let sum = p.failed_bytes as i64 + p.padding_bytes + p.tail_bytes as i64;
        assert_eq!(sum as u64, p.reclaimed_bytes());
    }

    #[test]
    fn compact_reclaims_at_least_as_much_as_holes() {
        let h = plan_region(Policy::Holes, BASE, SIZE, &three(Policy::Holes));
        let c = plan_region(Policy::Compact, BASE, SIZE, &three(Policy::Compact));
        assert!(c.reclaimed_bytes() >= h.reclaimed_bytes());
    }

    #[test]
    fn nothing_kept_frees_the_whole_region() {
        let m = [Placement {
            slot_start: BASE,
            slot_size: 4096,
            used: 10,
            live_at: None,
        }];
        for policy in [Policy::Holes, Policy::Compact] {
            let p = plan_region(policy, BASE, SIZE, &m);
            assert!(p.live.is_empty(), "{policy:?}");
            assert_eq!(p.reclaimed_bytes(), SIZE);
            assert_eq!(p.failed_bytes, 4096);
            assert_eq!(p.tail_bytes, SIZE - 4096);
        }
    }

    #[test]
    fn merge_and_complement() {
        assert_eq!(
            merge(vec![(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]),
            vec![(0, 3), (5, 9)]
        );
        assert_eq!(
            complement((0, 10), &[(0, 3), (5, 9)]),
            vec![(3, 5), (9, 10)]
        );
        assert_eq!(complement((0, 10), &[]), vec![(0, 10)]);
    }

    #[test]
    fn page_aligned_layout() {
        assert_eq!(page_aligned_bytes([0, 1, 4096, 4097]), 4096 + 4096 + 8192);
    }
}
