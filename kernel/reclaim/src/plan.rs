//! What becomes of every byte of a class range after the module phase, per
//! policy: which pages stay mapped, which go back to the frame allocator,
//! which tail becomes a trap-filled pool or heap, and the exact accounting
//! of the range into kernel, kept, failed, padding, freed, pool and heap
//! bytes.

use crate::policy::Policy;
use crate::{PACK_ALIGN, PAGE_2M, PAGE_4K, align_down, align_up};
use alloc::vec::Vec;
pub use report::Accounting;
use report::Hex;

/// A half-open address range `[start, end)`.
pub type Range = (u64, u64);

/// One class range: 2 MiB-aligned, shared by the kernel's own bytes of the
/// class (first) and the module slots (after them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassRange {
    /// First byte (2 MiB aligned).
    pub start: u64,
    /// One past the last byte (2 MiB aligned).
    pub end: u64,
    /// End of the kernel's own bytes of this class.
    pub kernel_end: u64,
}

impl ClassRange {
    /// Bytes in the range.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// What the compact policy makes of the tail of the last live huge page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailUse {
    /// Kept mapped and trap-filled, for code or data loaded later (text, rodata).
    Pool,
    /// Given to the kernel heap (data: it is RW+NX already).
    Heap,
}

/// Where one module's bytes of one class are after the module phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Address of the module's slot as prelinked.
    pub slot_start: u64,
    /// Bytes reserved for the slot.
    pub slot_size: u64,
    /// Bytes the module uses.
    pub used: u64,
    /// Where its bytes are now: where it lives if kept, where it was probed
    /// (and poisoned) if expunged.
    pub at: u64,
    /// Whether it was kept.
    pub kept: bool,
}

/// The outcome for one class range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassPlan {
    /// The range planned.
    pub range: Option<ClassRange>,
    /// End of the kernel's and the kept modules' bytes.
    pub live_end: u64,
    /// Page-aligned ranges that stay mapped (sorted, disjoint); they include
    /// the pool and the heap tail.
    pub mapped: Vec<Range>,
    /// Page-aligned ranges whose frames go back to the frame allocator.
    pub freed: Vec<Range>,
    /// The trap-filled pool (text, rodata under compact).
    pub pool: Option<Range>,
    /// The tail given to the heap (data under compact).
    pub heap: Option<Range>,
    /// Every byte of the range, accounted for.
    pub accounting: Accounting,
}

impl ClassPlan {
    /// Bytes freed to the frame allocator.
    pub fn freed_bytes(&self) -> u64 {
        self.freed.iter().map(|(s, e)| e - s).sum()
    }

    /// Bytes returned to general use: freed frames plus the heap tail.
    pub fn reclaimed_bytes(&self) -> u64 {
        self.freed_bytes() + self.heap.map_or(0, |(s, e)| e - s)
    }

    /// `[start, live_end)`: the kernel's and kept modules' bytes, over which
    /// the report counts mappings.
    pub fn live(&self) -> Range {
        (self.range.map_or(0, |r| r.start), self.live_end)
    }
}

/// Merges ranges into a sorted list of disjoint, non-empty ranges.
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

/// The complement of sorted disjoint `inside` within `outer`.
fn complement(outer: Range, inside: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    let mut at = outer.0;
    for &(s, e) in inside {
        if s > at {
            out.push((at, s));
        }
        at = at.max(e);
    }
    if at < outer.1 {
        out.push((at, outer.1));
    }
    out
}

/// Labels in the order of precedence where intervals overlap.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Label {
    Freed,
    Pool,
    Heap,
    Kernel,
    Kept,
    Failed,
}
const LABELS: usize = 6;

/// Accounts every byte of `range`: each byte takes the first label (in
/// [`Label`] order) of the intervals covering it; uncovered bytes are padding.
fn account(range: Range, intervals: &[(Range, Label)]) -> Accounting {
    let mut ev: Vec<(u64, Label, i32)> = Vec::with_capacity(intervals.len() * 2 + 2);
    for &((s, e), l) in intervals {
        let (s, e) = (s.max(range.0), e.min(range.1));
        if e > s {
            ev.push((s, l, 1));
            ev.push((e, l, -1));
        }
    }
    ev.sort_unstable_by_key(|e| e.0);
    let mut count = [0i32; LABELS];
    let mut bytes = [0u64; LABELS + 1];
    let mut at = range.0;
    let mut i = 0;
    loop {
        let next = ev.get(i).map_or(range.1, |e| e.0);
        let label = (0..LABELS).find(|&l| count[l] > 0).unwrap_or(LABELS);
        bytes[label] += next - at;
        at = next;
        if i >= ev.len() {
            break;
        }
        while i < ev.len() && ev[i].0 == at {
            count[ev[i].1 as usize] += ev[i].2;
            i += 1;
        }
    }
    Accounting {
        range: [Hex(range.0), Hex(range.1)],
        size: range.1 - range.0,
        freed: bytes[Label::Freed as usize],
        pool: bytes[Label::Pool as usize],
        heap: bytes[Label::Heap as usize],
        kernel: bytes[Label::Kernel as usize],
        kept: bytes[Label::Kept as usize],
        failed: bytes[Label::Failed as usize],
        padding: bytes[LABELS],
    }
}

/// Plans one class range under `policy`. `tail` says what the compact
/// policy makes of the tail of the last live huge page.
pub fn plan_class(
    policy: Policy,
    range: ClassRange,
    tail: TailUse,
    modules: &[Placement],
) -> ClassPlan {
    let whole = (range.start, range.end);
    let kept_end = modules
        .iter()
        .filter(|m| m.kept && m.used > 0)
        .map(|m| m.at + m.used)
        .max()
        .unwrap_or(0);
    let live_end = range.kernel_end.max(kept_end).max(range.start);
    let mut pool = None;
    let mut heap = None;
    let mapped = match policy {
        Policy::Keep => alloc::vec![whole],
        Policy::Holes => {
            let mut v: Vec<Range> = modules
                .iter()
                .filter(|m| m.kept && m.used > 0)
                .map(|m| (align_down(m.at, PAGE_4K), align_up(m.at + m.used, PAGE_4K)))
                .collect();
            v.push((range.start, align_up(range.kernel_end, PAGE_4K)));
            merge(v)
        }
        Policy::Compact => {
            let huge_end = align_up(live_end, PAGE_2M).min(range.end);
            let tail_start = align_up(live_end, PACK_ALIGN);
            if tail_start < huge_end {
                match tail {
                    TailUse::Pool => pool = Some((tail_start, huge_end)),
                    TailUse::Heap => heap = Some((tail_start, huge_end)),
                }
            }
            merge(alloc::vec![(range.start, huge_end)])
        }
        Policy::CompactSplit => merge(alloc::vec![(range.start, align_up(live_end, PAGE_4K))]),
    };
    let freed = complement(whole, &mapped);
    let mut intervals: Vec<(Range, Label)> = Vec::with_capacity(modules.len() * 2 + 8);
    intervals.extend(freed.iter().map(|&r| (r, Label::Freed)));
    intervals.extend(pool.map(|r| (r, Label::Pool)));
    intervals.extend(heap.map(|r| (r, Label::Heap)));
    intervals.push(((range.start, range.kernel_end), Label::Kernel));
    for m in modules.iter().filter(|m| m.used > 0) {
        if m.kept {
            intervals.push(((m.at, m.at + m.used), Label::Kept));
        } else {
            // Poisoned where it was probed and in its slot.
            intervals.push(((m.at, m.at + m.used), Label::Failed));
            intervals.push(((m.slot_start, m.slot_start + m.used), Label::Failed));
        }
    }
    ClassPlan {
        range: Some(range),
        live_end,
        mapped,
        freed,
        pool,
        heap,
        accounting: account(whole, &intervals),
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

    const START: u64 = 0xffff_ffff_8020_0000;
    const KERNEL_END: u64 = START + 0x2_7abe;
    const BASE: u64 = START + 0x2_7ac0; // first slot, 64-byte aligned

    fn range(pages: u64) -> ClassRange {
        ClassRange {
            start: START,
            end: START + pages * PAGE_2M,
            kernel_end: KERNEL_END,
        }
    }

    /// Three modules in 64-byte slots: kept (5000 B), failed (3000 B), kept
    /// (100 B). `packed` moves the third down over the failed one.
    fn three(packed: bool) -> Vec<Placement> {
        let third = BASE + 5056 + 3008;
        vec![
            Placement {
                slot_start: BASE,
                slot_size: 5056,
                used: 5000,
                at: BASE,
                kept: true,
            },
            Placement {
                slot_start: BASE + 5056,
                slot_size: 3008,
                used: 3000,
                at: BASE + 5056,
                kept: false,
            },
            Placement {
                slot_start: third,
                slot_size: 128,
                used: 100,
                at: if packed { BASE + 5056 } else { third },
                kept: true,
            },
        ]
    }

    fn sums_up(p: &ClassPlan) {
        let a = p.accounting;
        assert_eq!(a.parts(), a.size, "{a:?}");
        assert_eq!(a.freed, p.freed_bytes());
        assert_eq!(a.kernel, KERNEL_END - START);
    }

    #[test]
    fn keep_maps_everything_and_frees_nothing() {
        let p = plan_class(Policy::Keep, range(1), TailUse::Pool, &three(false));
        sums_up(&p);
        assert_eq!(p.mapped, vec![(START, START + PAGE_2M)]);
        assert!(p.freed.is_empty() && p.pool.is_none() && p.heap.is_none());
        assert_eq!(p.accounting.kept, 5100);
        assert_eq!(p.accounting.failed, 3000);
        assert_eq!(p.reclaimed_bytes(), 0);
    }

    #[test]
    fn holes_frees_untouched_4k_pages_in_place() {
        let p = plan_class(Policy::Holes, range(1), TailUse::Pool, &three(false));
        sums_up(&p);
        // Kernel + first module end at BASE + 5000 (page 0x2c); the third
        // module sits at BASE + 8064 (page 0x2d): one run of mapped pages.
        assert_eq!(
            p.mapped,
            vec![(START, align_up(BASE + 5056 + 3008 + 100, PAGE_4K))]
        );
        assert_eq!(p.freed, vec![(p.mapped[0].1, START + PAGE_2M)]);
        // The failed module shares pages with kept bytes: it stays, poisoned.
        assert_eq!(p.accounting.failed, 3000);
    }

    #[test]
    fn compact_keeps_the_huge_page_and_pools_its_tail() {
        let m = three(true);
        let p = plan_class(Policy::Compact, range(3), TailUse::Pool, &m);
        sums_up(&p);
        let live_end = BASE + 5056 + 100;
        assert_eq!(p.live_end, live_end);
        assert_eq!(p.mapped, vec![(START, START + PAGE_2M)]);
        assert_eq!(p.freed, vec![(START + PAGE_2M, START + 3 * PAGE_2M)]);
        assert_eq!(p.pool, Some((align_up(live_end, 64), START + PAGE_2M)));
        assert_eq!(p.accounting.kept, 5100);
        // The failed module's bytes were overwritten or lie in the pool,
        // but for the cache-line gap before the pool, which it still fills.
        assert_eq!(p.accounting.failed, align_up(live_end, 64) - live_end);
        // Padding: kernel end to the first slot, 56 B after the first module.
        assert_eq!(p.accounting.padding, 2 + 56);
        assert_eq!(p.reclaimed_bytes(), 2 * PAGE_2M);
        let h = plan_class(Policy::Compact, range(3), TailUse::Heap, &m);
        sums_up(&h);
        assert_eq!(h.heap, p.pool);
        assert_eq!(h.reclaimed_bytes(), 2 * PAGE_2M + h.accounting.heap);
    }

    #[test]
    fn compact_split_frees_the_tail_in_4k_pages() {
        let m = three(true);
        let c = plan_class(Policy::Compact, range(1), TailUse::Pool, &m);
        let s = plan_class(Policy::CompactSplit, range(1), TailUse::Pool, &m);
        sums_up(&s);
        let page_end = align_up(BASE + 5056 + 100, PAGE_4K);
        assert_eq!(s.mapped, vec![(START, page_end)]);
        assert_eq!(s.freed, vec![(page_end, START + PAGE_2M)]);
        assert!(s.pool.is_none() && s.heap.is_none());
        assert!(s.reclaimed_bytes() > c.reclaimed_bytes());
        assert_eq!(c.reclaimed_bytes(), 0, "one huge page, nothing past it");
    }

    #[test]
    fn a_kept_module_above_a_failed_one_leaves_failed_bytes_live() {
        // The expectation was wrong: the third module was probed in place.
        let p = plan_class(Policy::Compact, range(1), TailUse::Pool, &three(false));
        sums_up(&p);
        assert_eq!(p.accounting.failed, 3000);
        assert_eq!(p.live_end, BASE + 5056 + 3008 + 100);
    }

    #[test]
    fn nothing_kept_leaves_the_kernel_alone() {
        let m = [Placement {
            slot_start: BASE,
            slot_size: 4096,
            used: 10,
            at: BASE,
            kept: false,
        }];
        for policy in Policy::ALL {
            let p = plan_class(policy, range(2), TailUse::Heap, &m);
            sums_up(&p);
            if policy != Policy::Keep {
                assert_eq!(p.live_end, KERNEL_END, "{policy:?}");
                assert!(p.freed_bytes() >= PAGE_2M, "{policy:?}");
            }
        }
    }

    #[test]
    fn accounting_sums_for_random_layouts() {
        // A small deterministic generator: layouts of up to 40 modules.
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut at = BASE;
            let mut cursor = BASE;
            let mut mods = Vec::new();
            for _ in 0..next(40) {
                let used = next(9000);
                let slot = align_up(used, 64);
                let kept = next(3) != 0;
                let dest = if kept { align_up(cursor, 64) } else { cursor };
                mods.push(Placement {
                    slot_start: at,
                    slot_size: slot,
                    used,
                    at: dest,
                    kept,
                });
                if kept && used > 0 {
                    cursor = dest + used;
                }
                at += slot;
            }
            for policy in Policy::ALL {
                let p = plan_class(policy, range(2), TailUse::Pool, &mods);
                sums_up(&p);
            }
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
