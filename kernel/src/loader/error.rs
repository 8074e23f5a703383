//! Why an object could not be loaded or a module unloaded: one named
//! variant per cause, each message naming the object (and the symbol,
//! section or module concerned).

use crate::initrd::InitrdError;
use alloc::string::String;
use core::fmt;

/// A refused `insmod` or `rmmod`.
#[derive(Clone, Debug)]
pub enum LoadError {
    /// There is no initrd, or it is damaged.
    Initrd(InitrdError),
    /// The initrd has no object of that name.
    NotInInitrd {
        /// The name asked for.
        name: String,
        /// The names it has, comma-separated.
        available: String,
    },
    /// Not an ELF file at all.
    NotElf {
        /// Initrd entry.
        object: String,
    },
    /// The file ends before a header, table or section it describes.
    Truncated {
        /// Initrd entry.
        object: String,
        /// What is cut off.
        what: String,
    },
    /// An ELF file for another machine.
    WrongMachine {
        /// Initrd entry.
        object: String,
        /// The machine it is for.
        machine: String,
    },
    /// An ELF file that is not a relocatable object.
    NotRelocatable {
        /// Initrd entry.
        object: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// Inconsistent headers, tables or names.
    Malformed {
        /// Initrd entry.
        object: String,
        /// What is wrong.
        what: String,
    },
    /// Something the loader does not do (TLS, COMMON symbols, REL sections).
    Unsupported {
        /// Initrd entry.
        object: String,
        /// What.
        what: String,
    },
    /// A missing or invalid `.modinfo`, or no probe entry.
    Modinfo {
        /// Initrd entry.
        object: String,
        /// What is wrong.
        what: String,
    },
    /// A relocation type the loader does not apply.
    UnsupportedRelocation {
        /// Initrd entry.
        object: String,
        /// ELF relocation type name.
        rtype: String,
        /// Section the relocation applies to.
        section: String,
        /// Offset of the field in that section.
        offset: u64,
        /// Symbol it refers to.
        symbol: String,
    },
    /// A relocated value does not fit its field.
    RelocationOverflow {
        /// Initrd entry.
        object: String,
        /// What overflowed, with the values.
        what: String,
    },
    /// Neither the kernel nor a kept module exports a symbol it needs.
    UndefinedSymbol {
        /// Initrd entry.
        object: String,
        /// The symbol.
        symbol: String,
    },
    /// It imports a function with another signature than its exporter's.
    SignatureMismatch {
        /// Initrd entry.
        object: String,
        /// The symbol.
        symbol: String,
        /// The signature the object records for it (or why there is none).
        want: String,
        /// What the exporter records.
        have: String,
    },
    /// It uses a symbol of a kept module it does not declare as dependency.
    UndeclaredDependency {
        /// Initrd entry.
        object: String,
        /// The symbol.
        symbol: String,
        /// The module exporting it.
        exporter: String,
    },
    /// A declared dependency is not loaded.
    MissingDependency {
        /// Initrd entry.
        object: String,
        /// The module of the object.
        module: String,
        /// The dependency.
        dependency: String,
    },
    /// A module of that name is loaded already.
    AlreadyLoaded {
        /// Initrd entry.
        object: String,
        /// The module.
        module: String,
    },
    /// It exports a symbol the kernel or a kept module exports already.
    ExportClash {
        /// Initrd entry.
        object: String,
        /// The symbol.
        symbol: String,
        /// Who exports it now.
        owner: String,
    },
    /// No room for a class, even in a fresh 2 MiB page.
    NoMemory {
        /// Initrd entry.
        object: String,
        /// What could not be had.
        what: String,
    },
    /// `rmmod` of a module that is not loaded.
    NotLoaded {
        /// The name given.
        module: String,
    },
    /// `rmmod` of a module that kept modules depend on.
    InUse {
        /// The module.
        module: String,
        /// Its dependents, comma-separated.
        dependents: String,
    },
}

impl LoadError {
    /// Short kind for the report (`truncated`, `wrong-machine`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            LoadError::Initrd(_) => "initrd",
            LoadError::NotInInitrd { .. } => "not-in-initrd",
            LoadError::NotElf { .. } => "not-elf",
            LoadError::Truncated { .. } => "truncated",
            LoadError::WrongMachine { .. } => "wrong-machine",
            LoadError::NotRelocatable { .. } => "not-relocatable",
            LoadError::Malformed { .. } => "malformed",
            LoadError::Unsupported { .. } => "unsupported",
            LoadError::Modinfo { .. } => "modinfo",
            LoadError::UnsupportedRelocation { .. } => "unsupported-relocation",
            LoadError::RelocationOverflow { .. } => "relocation-overflow",
            LoadError::UndefinedSymbol { .. } => "undefined-symbol",
            LoadError::SignatureMismatch { .. } => "signature-mismatch",
            LoadError::UndeclaredDependency { .. } => "undeclared-dependency",
            LoadError::MissingDependency { .. } => "missing-dependency",
            LoadError::AlreadyLoaded { .. } => "already-loaded",
            LoadError::ExportClash { .. } => "export-clash",
            LoadError::NoMemory { .. } => "no-memory",
            LoadError::NotLoaded { .. } => "not-loaded",
            LoadError::InUse { .. } => "in-use",
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Initrd(e) => write!(f, "{e}"),
            LoadError::NotInInitrd { name, available } => {
                write!(f, "no object `{name}` in the initrd (it has: {available})")
            }
            LoadError::NotElf { object } => write!(f, "{object}: not an ELF file (bad magic)"),
            LoadError::Truncated { object, what } => write!(f, "{object}: truncated: {what}"),
            LoadError::WrongMachine { object, machine } => write!(
                f,
                "{object}: wrong machine: ELF for {machine}, expected x86_64"
            ),
            LoadError::NotRelocatable { object, kind } => write!(
                f,
                "{object}: not relocatable: {kind}, expected a relocatable object (ET_REL)"
            ),
            LoadError::Malformed { object, what } => write!(f, "{object}: malformed: {what}"),
            LoadError::Unsupported { object, what } => write!(f, "{object}: unsupported: {what}"),
            LoadError::Modinfo { object, what } => write!(f, "{object}: {what}"),
            LoadError::UnsupportedRelocation {
                object,
                rtype,
                section,
                offset,
                symbol,
            } => write!(
                f,
                "{object}: unsupported relocation {rtype} in section {section} offset {offset:#x} (symbol `{symbol}`)"
            ),
            LoadError::RelocationOverflow { object, what } => {
                write!(f, "{object}: relocation overflow: {what}")
            }
            LoadError::UndefinedSymbol { object, symbol } => write!(
                f,
                "{object}: undefined symbol `{symbol}` (exported by neither the kernel nor a kept module)"
            ),
            LoadError::SignatureMismatch {
                object,
                symbol,
                want,
                have,
            } => write!(f, "{object}: imports `{symbol}` as {want}, but {have}"),
            LoadError::UndeclaredDependency {
                object,
                symbol,
                exporter,
            } => write!(
                f,
                "{object}: uses symbol `{symbol}` of module {exporter} without declaring depends={exporter}"
            ),
            LoadError::MissingDependency {
                object,
                module,
                dependency,
            } => write!(
                f,
                "{object}: module {module} depends on {dependency}, which is not loaded"
            ),
            LoadError::AlreadyLoaded { object, module } => {
                write!(f, "{object}: module {module} is loaded already")
            }
            LoadError::ExportClash {
                object,
                symbol,
                owner,
            } => write!(
                f,
                "{object}: exports `{symbol}`, which {owner} exports already"
            ),
            LoadError::NoMemory { object, what } => write!(f, "{object}: out of memory: {what}"),
            LoadError::NotLoaded { module } => write!(f, "no loaded module {module}"),
            LoadError::InUse { module, dependents } => write!(
                f,
                "module {module} is in use by {dependents}: unload them first"
            ),
        }
    }
}
