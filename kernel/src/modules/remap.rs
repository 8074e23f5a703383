//! Applying the class plans to the page tables, the frame allocator and the
//! heap, and measuring the result.

use super::{Module, image};
use crate::mm::{frames, heap, paging};
use alloc::format;
use alloc::string::String;
use modtable::{Class, PerClass};
use reclaim::plan::{ClassPlan, ClassRange};

/// Figures measured while applying the plans.
pub struct Applied {
    /// Free frames right before the freed ranges were handed back.
    pub free_frames_before: usize,
    /// Free frames right after.
    pub free_frames_after: usize,
    /// Free heap bytes before the data tail was given to the heap.
    pub heap_free_before: usize,
    /// Free heap bytes after.
    pub heap_free_after: usize,
    /// (4 KiB, 2 MiB) mappings per class over the kernel's and the kept
    /// modules' bytes afterwards.
    pub mappings_after: PerClass<(usize, usize)>,
    /// Writable-and-executable leaves in the live tables.
    pub wx_pages: usize,
    /// Frames writable through one mapping and executable or read-only
    /// through another.
    pub wx_alias_frames: u64,
}

/// (4 KiB, 2 MiB) mappings per class over the kernel's bytes and the
/// modules' used slot bytes, read from the page tables before anything
/// changes.
pub fn count_slot_mappings(
    mods: &[Module],
    ranges: &PerClass<ClassRange>,
) -> PerClass<(usize, usize)> {
    PerClass(Class::ALL.map(|c| {
        let end = mods
            .iter()
            .filter(|m| m.placement.size[c] > 0)
            .map(|m| m.slot[c] + m.placement.size[c] as u64)
            .fold(ranges[c].kernel_end, u64::max);
        paging::count_mappings(ranges[c].start, end - ranges[c].start)
    }))
}

/// Applies the plans: trap-fills the text and rodata pools (and the stale
/// bytes between the live end and them), unmaps every freed range
/// (splitting a huge page only where a range ends inside one), makes the
/// direct map of freed text and rodata frames writable again for the
/// allocator, removes the module-phase alias, gives the freed frames to the
/// frame allocator and the data tail to the heap, then measures mappings
/// and W^X on the live tables.
pub fn apply(plans: &PerClass<ClassPlan>) -> Result<Applied, String> {
    for c in [Class::Text, Class::Rodata] {
        let p = &plans[c];
        // Everything still mapped past the live end is unused (the pool,
        // stale bytes of failed modules): trap it.
        if let Some(&(s, e)) = p.mapped.last()
            && s <= p.live_end
        {
            // The kernel's own bytes end before the slot region starts.
            let from = p.live_end.max(image::regions()[c].0);
            image::trap_fill(c, from, e).map_err(|err| {
                format!(
                    "cannot trap-fill the {} tail {from:#x}..{e:#x}: {err}",
                    c.name()
                )
            })?;
        }
    }
    for c in Class::ALL {
        for &(s, e) in &plans[c].freed {
            let err = |what: &str, err: paging::PagingError| {
                format!(
                    "cannot {what} freed {} range {s:#x}..{e:#x}: {err}",
                    c.name()
                )
            };
            paging::unmap_range(s, e - s).map_err(|x| err("unmap", x))?;
            if c != Class::Data {
                let direct = paging::phys_to_virt(image::image_phys(s));
                paging::protect_range(direct, e - s, paging::Flags::RW)
                    .map_err(|x| err("make writable in the direct map", x))?;
            }
        }
    }
    image::close_alias().map_err(|e| format!("cannot remove the module-phase alias: {e}"))?;
    // Page tables are final now: what changes next is only the freed frames.
    let free_frames_before = frames::free_frames() as usize;
    for c in Class::ALL {
        for &(s, e) in &plans[c].freed {
            frames::add_range(
                frames::PhysAddr(image::image_phys(s)),
                frames::PhysAddr(image::image_phys(e)),
            )
            .map_err(|err| {
                format!(
                    "cannot give back {} frames {s:#x}..{e:#x}: {err:?}",
                    c.name()
                )
            })?;
        }
    }
    let free_frames_after = frames::free_frames() as usize;
    let heap_free_before = heap::free_bytes();
    if let Some((s, e)) = plans[Class::Data].heap {
        image::give_data_tail_to_heap(s, e).map_err(|err| {
            format!("cannot give the data tail {s:#x}..{e:#x} to the heap: {err}")
        })?;
    }
    let heap_free_after = heap::free_bytes();
    let mappings_after = PerClass(Class::ALL.map(|c| {
        let (s, e) = plans[c].live();
        paging::count_mappings(s, e - s)
    }));
    Ok(Applied {
        free_frames_before,
        free_frames_after,
        heap_free_before,
        heap_free_after,
        mappings_after,
        wx_pages: paging::count_wx_pages(),
        wx_alias_frames: paging::wx_alias_frames(),
    })
}
