//! Applying the reclaim plans to the page tables and the page allocator.

use super::{Module, image};
use crate::mm::{frames, paging};
use alloc::format;
use alloc::string::String;
use modtable::table::Header;
use modtable::{Class, PerClass};
use reclaim::plan::RegionPlan;

/// Figures measured while applying the plans.
pub struct Applied {
    /// Free frames right before the freed ranges were handed back.
    pub free_frames_before: usize,
    /// Free frames right after.
    pub free_frames_after: usize,
    /// (4 KiB, 2 MiB) mappings over the live ranges afterwards.
    pub mappings_after: (usize, usize),
}

fn add(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0 + b.0, a.1 + b.1)
}

/// (4 KiB, 2 MiB) mappings over the bytes the modules' slots use, per
/// region from its start to the end of its last used slot (read from the
/// page tables before anything changes).
pub fn count_slot_mappings(mods: &[Module], h: &Header) -> (usize, usize) {
    Class::ALL.iter().fold((0, 0), |acc, &c| {
        let end = mods
            .iter()
            .filter(|m| m.rec.size[c] > 0)
            .map(|m| m.slot[c] + m.rec.size[c] as u64)
            .max();
        match end {
            Some(end) => add(
                acc,
                paging::count_mappings(h.region_base[c], end - h.region_base[c]),
            ),
            None => acc,
        }
    })
}

/// Unmaps every freed range (splitting huge pages where a range ends inside
/// one), then gives the freed frames to the page allocator. Live ranges keep
/// their class permissions; no page becomes writable and executable.
pub fn apply(plans: &PerClass<RegionPlan>) -> Result<Applied, String> {
    for c in Class::ALL {
        for &(s, e) in &plans[c].freed {
            paging::unmap_range(s, e - s).map_err(|err| {
                format!(
                    "cannot unmap freed {} range {s:#x}..{e:#x}: {err:?}",
                    c.name()
                )
            })?;
        }
    }
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
    let mappings_after = Class::ALL.iter().fold((0, 0), |acc, &c| {
        plans[c].live.iter().fold(acc, |acc, &(s, e)| {
            add(acc, paging::count_mappings(s, e - s))
        })
    });
    Ok(Applied {
        free_frames_before,
        free_frames_after,
        mappings_after,
    })
}
