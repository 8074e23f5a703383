//! The redo algorithm: after modules moved, each recorded field changes by
//! its target's displacement (minus its own for a PC-relative kind).

use super::Table;
use super::format::Target;
use crate::{Class, PerClass};
use core::fmt;

/// Why [`Table::redo`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedoError {
    /// Fields refer to a module whose displacement is unknown (not kept).
    Target(u16),
    /// A field could not be adjusted.
    Field {
        /// Class holding the field.
        class: Class,
        /// Offset of the field.
        offset: u32,
        /// What went wrong.
        err: crate::RelocError,
    },
}

impl fmt::Display for RedoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedoError::Target(m) => {
                write!(f, "relocations refer to module {m}, which was not kept")
            }
            RedoError::Field { class, offset, err } => {
                write!(f, "field at {}+{offset:#x}: {err}", class.name())
            }
        }
    }
}

impl Table<'_> {
    /// Redoes the relocations of module `index` after modules moved.
    /// `bytes[c]` holds the module's class `c` at its new address as
    /// prelinked (moved, not yet adjusted); `moved(m, c)` says how far class
    /// `c` of module `m` moved (new address minus slot address, two's
    /// complement), or `None` if module `m` was not kept. Groups whose
    /// fields do not change are skipped. Returns the number of fields
    /// rewritten.
    pub fn redo(
        &self,
        index: usize,
        bytes: &mut PerClass<&mut [u8]>,
        moved: impl Fn(u16, Class) -> Option<i64>,
    ) -> Result<u32, RedoError> {
        let m = self.module(index);
        let me = index as u16;
        let mut rewritten = 0;
        for g in self.groups(&m).flatten() {
            let target = match g.target {
                Target::Absolute => 0,
                Target::Module { module, class } => {
                    moved(module, class).ok_or(RedoError::Target(module))?
                }
            };
            let delta = if g.kind.is_pc_relative() {
                let place = moved(me, g.place_class).ok_or(RedoError::Target(me))?;
                target.wrapping_sub(place)
            } else {
                target
            };
            if delta == 0 {
                continue;
            }
            let buf = &mut *bytes[g.place_class];
            rewritten += crate::reloc::adjust_all(g.kind, buf, g.offsets(), delta).map_err(
                |(offset, err)| RedoError::Field {
                    class: g.place_class,
                    offset,
                    err,
                },
            )?;
        }
        Ok(rewritten)
    }
}
