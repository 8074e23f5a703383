//! The image format: the module table and export list, the binary contract
//! between the prelinker (host) and the kernel (boot time). The module ABI
//! (kernel services, signatures, `.modinfo`) is the separate `modabi` crate.
//!
//! The prelinker lays every module out as one *slot* per [`Class`] inside the
//! kernel image's module regions, applies the module's relocations for those
//! slot addresses, and writes a [`table`] into the image's `.modtable`
//! section. The kernel never parses a built-in module's ELF: when it moves a
//! module's classes to new addresses it redoes the recorded relocations with
//! [`reloc::apply`]. After the table, [`exports`] lists what the modules
//! export, for modules loaded at run time.
//!
//! This crate is `no_std`, has no dependencies and builds (and is tested) on
//! the host; the `alloc` feature adds the writer the prelinker uses.

#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod checksum;
pub mod class;
pub mod exports;
pub mod reloc;
pub mod table;

pub use class::{Class, PerClass};
pub use reloc::{RelocError, RelocKind};
