//! The prelinker's error type: one message that names the file, and where
//! they apply the section, symbol, offset and relocation type.

use std::fmt;

/// What went wrong, for callers (and tests) that want to tell errors apart
/// without parsing messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Reading or writing a file failed.
    Io,
    /// An input is not a well-formed ELF object (truncated, corrupt, bad indices).
    Malformed,
    /// An input is ELF but of the wrong kind (not x86_64, not relocatable, not 64-bit).
    WrongKind,
    /// The kernel ELF lacks a section or has an unusable one.
    Kernel,
    /// A `.modinfo` problem (missing, malformed, wrong ABI version).
    Modinfo,
    /// An archive has no module member, or several.
    Archive,
    /// Two modules have the same name.
    DuplicateModule,
    /// Two modules (or a module and the kernel) export one symbol.
    DuplicateExport,
    /// A declared export is not a defined global of the module.
    BadExport,
    /// A dependency names no module.
    MissingDependency,
    /// Dependencies form a cycle.
    DependencyCycle,
    /// A symbol resolves nowhere.
    UndefinedSymbol,
    /// A symbol comes from a module that is not a declared dependency.
    UndeclaredDependency,
    /// A module imports a function with another signature than its
    /// exporter's (the kernel's or another module's).
    SignatureMismatch,
    /// A relocation type the prelinker does not support.
    UnsupportedRelocation,
    /// A relocated value does not fit its field.
    RelocationOverflow,
    /// A section or relocation the prelinker cannot place (TLS, COMMON, bad offset).
    Unsupported,
    /// A class region is too small for the modules.
    RegionOverflow,
    /// The module table does not fit the `.modtable` area.
    TableOverflow,
    /// A prelinked image's module bytes or module table do not match the
    /// checksums the table records.
    Checksum,
    /// A saved boot log has no usable `REPORT` line.
    Report,
    /// An expectation file (`link --expect`) is malformed or names an
    /// unknown module.
    Expectation,
    /// A size baseline (`sizes --baseline`) is malformed.
    Baseline,
    /// A module grew past its size budget (`sizes --baseline`).
    SizeBudget,
    /// A module object given to `sizes` is not one of the image's modules,
    /// is given twice, or is not the one the image was linked from.
    NotInImage,
    /// A command-line problem.
    Usage,
}

/// An error with a complete, human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
}

impl Error {
    /// Creates an error.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error {
            kind,
            msg: msg.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.msg
    }

    /// Prefixes the message with `context: `.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.msg = format!("{context}: {}", self.msg);
        self
    }

    /// Says where in `file` the error is: a message `FILE: what` becomes
    /// `FILE (detail): what`, and any other `FILE (detail): message`.
    pub fn located(mut self, file: &str, detail: impl fmt::Display) -> Error {
        let what = self
            .msg
            .strip_prefix(file)
            .and_then(|m| m.strip_prefix(": "))
            .unwrap_or(&self.msg);
        self.msg = format!("{file} ({detail}): {what}");
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

/// Result with the prelinker's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns early with an [`Error`] of the given kind and formatted message.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($fmt:tt)*) => {
        return Err($crate::error::Error::new($crate::error::ErrorKind::$kind, format!($($fmt)*)))
    };
}

/// Builds an [`Error`] of the given kind with a formatted message.
#[macro_export]
macro_rules! err {
    ($kind:ident, $($fmt:tt)*) => {
        $crate::error::Error::new($crate::error::ErrorKind::$kind, format!($($fmt)*))
    };
}
