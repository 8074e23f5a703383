//! The prelinker: places module objects into the slots of the kernel image's
//! module regions.
//!
//! Given the kernel ELF (with empty `.modules.text`, `.modules.rodata`,
//! `.modules.data` regions, a `.modtable` area and a `.kexports` table) and
//! the module objects, it orders the modules (dependencies first), lays
//! every module's sections out into one slot per class, resolves symbols
//! against the kernel's exports and earlier modules' exports, applies the
//! relocations with [`modtable::reloc::apply`], and writes the module table
//! the kernel uses to move modules at boot. The result is a byte copy of the
//! kernel ELF with those sections' contents replaced.
//!
//! Modules: [`elf`] (reader), [`input`] (module objects and archives),
//! [`prepare`] (one module on its own: parse, lay out, lower relocations),
//! [`kernel`] (the kernel's sections and exports), [`expect`] (which modules
//! are expected to be kept), [`order`], [`layout`],
//! [`symbols`], [`relocate`], [`table_writer`], [`mod@link`] (the whole step),
//! [`plan`] (the layout report), [`image`] (atomic output, and refusing
//! outputs that would overwrite an input), [`inspect`] (reading an image
//! back and verifying its checksums), [`report`] (boot-log reports),
//! [`sizes`] (module sizes against a baseline), [`phases`] (phase times for
//! profiling), and [`synth`] (synthetic kernels for tests and benchmarks).
//! Inputs are read with bounds ([`input::MAX_INPUT_SIZE`]; a module object
//! only in the parts the link uses).

pub mod arena;
pub mod elf;
pub mod error;
pub mod expect;
pub mod image;
pub mod input;
pub mod inspect;
pub mod kernel;
pub mod layout;
pub mod link;
pub mod order;
pub mod par;
pub mod phases;
pub mod plan;
pub mod prepare;
pub mod relocate;
pub mod report;
pub mod sizes;
mod sparse;
pub mod symbols;
pub mod synth;
pub mod table_writer;

pub use error::{Error, ErrorKind, Result};

/// The hash map the prelinker uses for names: std's, with foldhash's fast
/// hasher instead of SipHash. The keys are symbol and module names from the
/// link's own inputs, so hash flooding is no concern, and hashing them was
/// a measurable share of a large link (several lookups per import).
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub use input::InputFile;
pub use link::{LinkOptions, LinkOutput, Patch, Prelinked, link, link_files, link_patches};
