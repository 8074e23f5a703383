//! Binary layout of the module table in the image's `.modtable` section.
//!
//! All integers are little-endian. Layout:
//!
//! ```text
//! header        HEADER_SIZE bytes
//! modules       module_count × MODULE_RECORD_SIZE
//! groups        groups_count × GROUP_RECORD_SIZE (each module owns a run)
//! offsets       offsets_count × u32 (each group owns a run)
//! deps          deps_count × u16 (module indices; each module owns a run)
//! strings       strings_len bytes (module names, UTF-8, not NUL-terminated)
//! ```
//!
//! Modules appear in slot order, which is also probe order: every module's
//! dependencies have smaller indices. The table only records relocated
//! fields whose value can change when modules move, grouped by what moves
//! them: a group is a relocation kind, the class holding the fields, and
//! their target (a class of some module, or an absolute address), followed
//! by the offsets of its fields in this module's slot of that class. Every
//! field of a group changes by the same amount when modules move
//! ([`Table::redo`]): the target's displacement, minus the place's for a
//! PC-relative kind. The fields' bytes as prelinked carry the rest, so no
//! addend is stored.
//!
//! The header carries a checksum of the whole table
//! ([`crate::checksum::Wide`], sixteen lanes over 64-bit words,
//! computed with the checksum field zeroed), so a table the kernel reads is
//! the one the prelinker wrote.
//!
//! The format (constants, header, records, checksum) is in `format`,
//! reading and validation in `read`, the redo algorithm in `redo`, and the
//! writer (feature `alloc`) in `write`.

mod format;
mod read;
mod redo;
#[cfg(all(test, feature = "alloc"))]
mod tests;
#[cfg(feature = "alloc")]
mod write;

pub use format::*;
pub use read::{Table, TableError};
pub use redo::RedoError;
#[cfg(feature = "alloc")]
pub use write::{ModuleEntry, RelocGroups, build};
