//! The probe loop's unsafe seam: a module's bytes through `image`'s
//! aliases (read for the checksum, poisoned, moved and relocated, copied for
//! the memmove baseline) and calls into its entries. The loop itself
//! ([`super::load`]) has no unsafe code: it decides, this file does.
//!
//! The rule every function here keeps: during the module phase the loop
//! owns the slot regions and touches a module's bytes only through these
//! functions, one module at a time in table order; a kept module's bytes
//! are never written again, and an expunged module's lie above every
//! packing cursor (or are its own slot under keep and holes).
//!
//! A module goes through two tokens this file makes: a [`Checked`] once
//! its checksum matched where it now lies (its bytes are the prelinker's),
//! and a [`Placed`] once its relocations are also right for that address
//! (prelinked there, or redone by [`relocate`]). An entry of a module is
//! called only through a [`Placed`].
//!
//! Under the compact policies a module is moved to the packing cursors
//! *before* its checksum is checked ([`move_to_cursors`], then [`verify`]
//! at the destination): the move reads the slot bytes once, from memory,
//! and the checksum then reads the copy from cache. Moving unchecked bytes
//! is safe: they are only copied, from the module's slot to a place at or
//! above its class's packing cursor (below which every kept byte lies),
//! and a mismatch expunges the module before any of its bytes is
//! relocated or run.
#![allow(unsafe_code)]

use super::guard::{self, Outcome};
use super::{Module, image};
use crate::arch::tsc;
use alloc::string::{String, ToString};
use modtable::checksum::module_checksum;
use modtable::table::Table;
use modtable::{Class, PerClass};
use reclaim::pack::Cursors;

/// Byte every expunged module's classes are filled with (`int3` in text).
const POISON: u8 = 0xcc;

/// Module `i` may be called at `mods[i].base`: its checksum matched and
/// its relocations are right for that address. Only this file makes one.
#[derive(Debug)]
pub struct Placed {
    i: usize,
}

/// Module `i`'s bytes at `base` (`mods[i].base` when it was checked) are
/// the prelinker's (its checksum matched there); their relocations are
/// still those prelinked for its slot. Only [`verify`] makes one.
#[derive(Debug)]
pub struct Checked {
    i: usize,
    base: PerClass<u64>,
}

impl Checked {
    /// The module was checked in its slot (`base` is the slot), where its
    /// prelinked relocations are right: it may be called there (the
    /// policies that do not move modules).
    pub fn in_slot(self, mods: &[Module]) -> Placed {
        let m = &mods[self.i];
        assert!(
            m.base == self.base && Class::ALL.iter().all(|&c| m.base[c] == m.slot[c]),
            "module {} does not lie in its slot",
            m.name
        );
        Placed { i: self.i }
    }
}

/// Checks module `i`'s bytes where they now lie (`mods[i].base`: its slot,
/// or where [`move_to_cursors`] put them) against the table's checksum
/// (the time taken goes to `checksum_ns`); `Err((stored, computed))` if
/// they differ.
pub fn verify(mods: &mut [Module], i: usize) -> Result<Checked, (u64, u64)> {
    let m = &mods[i];
    let t = tsc::read();
    let computed = module_checksum(Class::ALL.map(|c| {
        // SAFETY: the module's class `c` at `base` lies inside the class
        // region (its slot, validated against the regions with the table,
        // or a place below it that `move_to_cursors` copied it to), and
        // nothing writes it meanwhile (the seam's rule).
        unsafe { image::alias(m.base[c], m.placement.size[c] as u64) }
    }));
    let (stored, base) = (m.placement.checksum, m.base);
    mods[i].checksum_ns = tsc::ticks_to_ns(tsc::read() - t);
    if computed == stored {
        Ok(Checked { i, base })
    } else {
        Err((stored, computed))
    }
}

/// Fills an expunged module's bytes, where it was moved (and probed) and
/// in its slot, with [`POISON`].
pub fn poison(m: &Module) {
    for c in Class::ALL {
        let len = m.placement.size[c] as u64;
        for at in [m.base[c], m.slot[c]] {
            // SAFETY: an expunged module's bytes where it was moved (and
            // checked or probed) and in its slot lie at or above every
            // packing cursor (or are its own slot under keep/holes), so no
            // live module shares them.
            unsafe { image::alias_mut(at, len) }.fill(POISON);
        }
    }
}

/// Moves module `i`'s classes from its slot to the cursors (or leaves
/// them in its slot if `in_place`), before its checksum is checked, and
/// records where they went (`base`), the bytes moved and the time of the
/// copy (`copy_ns`).
pub fn move_to_cursors(mods: &mut [Module], i: usize, cursors: &Cursors, in_place: bool) {
    let rec = mods[i].placement;
    let t_copy = tsc::read();
    for c in Class::ALL {
        let size = rec.size[c] as u64;
        let from = mods[i].slot[c];
        let dest = if in_place {
            from
        } else {
            cursors.place(c, size, rec.align[c] as u64)
        };
        if size > 0 && dest != from {
            // SAFETY: both ranges lie in the class's slot region (cursor <=
            // dest <= slot, both below the region end), so no kept byte,
            // which all lie below the cursor, is written; the copy is a
            // memmove, and nothing else uses these bytes now (the seam's
            // rule). The bytes are not yet checked, but they are only
            // copied.
            unsafe { image::copy_within(from, dest, size) };
            mods[i].bytes_moved += size;
        }
        mods[i].base[c] = dest;
    }
    mods[i].copy_ns = tsc::ticks_to_ns(tsc::read() - t_copy);
}

/// Redoes the relocations of the module of `checked` for where it now lies
/// (`base`, after [`move_to_cursors`]) and records the time taken, with the
/// serialising instruction after it. Gives the token that lets it be
/// called there only if every relocation was redone.
pub fn relocate(
    checked: Checked,
    table: &Table<'_>,
    mods: &mut [Module],
) -> Result<Placed, String> {
    let i = checked.i;
    assert!(
        mods[i].base == checked.base,
        "module {} moved after its check",
        mods[i].name
    );
    let rec = mods[i].placement;
    let t_relocate = tsc::read();
    // The module's classes at their new addresses, through the alias.
    let b = mods[i].base;
    // SAFETY: each class of this module, at its new address inside its own
    // region (three disjoint ranges); nothing else refers to them meanwhile.
    let mut bytes =
        PerClass(Class::ALL.map(|c| unsafe { image::alias_mut(b[c], rec.size[c] as u64) }));
    let moved = |m: u16, c: Class| {
        let t = &mods[m as usize];
        (m as usize == i || t.kept).then(|| t.base[c].wrapping_sub(t.slot[c]) as i64)
    };
    let redone = table.redo(i, &mut bytes, moved);
    crate::arch::serialize();
    mods[i].relocate_ns = tsc::ticks_to_ns(tsc::read() - t_relocate);
    mods[i].relocs_redone = redone.map_err(|e| match e {
        modtable::table::RedoError::Target(m) => {
            alloc::format!("refers to expunged module {}", mods[m as usize].name)
        }
        e => e.to_string(),
    })?;
    Ok(Placed { i })
}

/// Calls the probe of the module of `placed`, where it is, under the guard
/// and as that module (for the services it calls).
pub fn probe(placed: &Placed, mods: &[Module], budget_ms: u64) -> Outcome {
    call(placed, mods, mods[placed.i].placement.probe_off, budget_ms)
}

/// Calls the self-test of the module of `placed` (kept, so its bytes are
/// unchanged since its probe), if it has one.
pub fn selftest(placed: &Placed, mods: &[Module], budget_ms: u64) -> Option<Outcome> {
    let off = mods[placed.i].placement.selftest_off?;
    Some(call(placed, mods, off, budget_ms))
}

/// Calls the entry at `text_off` in the text of the module of `placed`.
fn call(placed: &Placed, mods: &[Module], text_off: u32, budget_ms: u64) -> Outcome {
    let entry = mods[placed.i].base[Class::Text] + text_off as u64;
    // SAFETY: `entry` is an entry point the table gives (the probe or the
    // self-test, inside the module's text) of a module whose checksum
    // matched and whose relocations are right for where it now is
    // (`Placed`); a kept module is never written again.
    crate::kapi::run_as(placed.i, || unsafe { guard::run(entry, budget_ms) })
}

/// Times a plain memmove of each kept module's bytes (all classes, from
/// where they live to a scratch buffer), in this same boot, to compare with
/// its move + relocate time.
pub fn measure_memmove(mods: &mut [Module]) {
    let max = mods
        .iter()
        .filter(|m| m.kept)
        .map(|m| {
            m.placement
                .size
                .0
                .iter()
                .map(|&s| s as usize)
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    let mut scratch = alloc::vec![0u8; max];
    for m in mods.iter_mut().filter(|m| m.kept && m.bytes_moved > 0) {
        let t = tsc::read();
        let mut at = 0;
        for c in Class::ALL {
            let len = m.placement.size[c] as usize;
            // SAFETY: the module's live bytes, read through the direct map.
            let src = unsafe { image::alias(m.base[c], len as u64) };
            scratch[at..at + len].copy_from_slice(src);
            at += len;
        }
        m.memmove_ns = tsc::ticks_to_ns(tsc::read() - t);
        core::hint::black_box(&scratch);
    }
}
