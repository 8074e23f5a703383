//! The module API: everything a built-in module may use.
//!
//! A module is a `staticlib` crate with `#![no_std]` and
//! `#![forbid(unsafe_code)]`. It declares itself with [`module!`], which
//! emits the `.modinfo` section the prelinker reads and the `extern "C"`
//! entry points the kernel calls (`__module_probe`, `__module_selftest`):
//!
//! ```ignore
//! module_api::module! {
//!     name: "e1000",
//!     depends: ["pci"],
//!     probe: probe,
//! }
//!
//! fn probe(ctx: &mut ProbeContext) -> Result<(), ProbeError> { /* ... */ }
//! ```
//!
//! The kernel services (`kapi_*`, see `modabi`) are wrapped safely:
//! logging macros ([`info!`] and friends), [`ports::Ports`], [`mmio::Mmio`],
//! [`pci`] configuration space, [`irq`], [`console`], [`time`], [`acpi`],
//! [`device`], a global allocator so modules may use `alloc`, and a panic
//! handler. Modules export functions to later modules with [`export_fn!`]
//! and import them with [`import_fn!`]; shared FFI types such as
//! [`pci::PciDevice`] live here. All `unsafe` code of module builds is in
//! this crate.
//!
//! Driver logic is written against small traits ([`ports::PortIo`],
//! [`mmio::MmioIo`], [`pci::ConfigSpace`], [`time::Clock`]) so it can be
//! unit-tested on the host with fakes; on the host the raw services are
//! stubs that panic.
//!
//! Module crates keep `#![forbid(unsafe_code)]` although the macros of this
//! crate expand to `#[unsafe(no_mangle)]`, `#[unsafe(link_section)]` and
//! `unsafe` blocks: rustc does not report the `unsafe_code` lint for code
//! that comes from another crate's macro, while unsafe code written in the
//! module itself is still rejected.

#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub mod acpi;
pub mod console;
pub mod device;
pub mod error;
pub mod heap;
pub mod irq;
pub mod log;
pub mod mmio;
pub mod modinfo;
pub mod msg;
#[cfg(all(target_os = "none", not(test)))]
mod panic;
pub mod pci;
pub mod percpu;
pub mod ports;
pub mod probe;
pub mod sync;
mod sys;
pub mod time;

pub use error::{ProbeError, ProbeErrorKind};
pub use probe::ProbeContext;

/// Re-exports for the expansion of this crate's macros.
#[doc(hidden)]
pub mod __private {
    pub use core::{concat, format_args, stringify};
    pub use modabi::signature_text;
}

/// Declares a module: its `.modinfo` entries and its entry points.
///
/// ```ignore
/// module_api::module! {
///     name: "pci",                        // [a-z][a-z0-9_]{0,31}
///     depends: ["acpi_x"],                // optional: modules probed (and kept) first
///     exports: [pci_find_device],         // optional: functions from export_fn!
///     probe: probe,                       // fn(&mut ProbeContext) -> Result<(), ProbeError>
///     selftest: selftest,                 // optional: fn() -> Result<(), ProbeError>
/// }
/// ```
#[macro_export]
macro_rules! module {
    (
        name: $name:literal,
        $(depends: [$($dep:literal),* $(,)?],)?
        $(exports: [$($exp:ident),* $(,)?],)?
        probe: $probe:path
        $(, selftest: $selftest:path)?
        $(,)?
    ) => {
        const _: () = {
            const MODINFO: &str = $crate::__modinfo_text!(
                name: $name,
                depends: [$($($dep),*)?],
                exports: [$($($exp),*)?]
            );
            const _: () = ::core::assert!(
                $crate::modinfo::valid_name($name),
                "module name must match [a-z][a-z0-9_]{{0,31}}"
            );
            $($(const _: () = ::core::assert!(
                $crate::modinfo::valid_name($dep),
                "dependency name must match [a-z][a-z0-9_]{{0,31}}"
            );)*)?
            // Every exported name must be a function of this crate.
            $($(const _: () = { let _ = $exp; };)*)?

            #[used]
            #[unsafe(link_section = ".modinfo")]
            static MODINFO_SECTION: [u8; MODINFO.len()] = $crate::modinfo::bytes(MODINFO);

            // The ABI version, as the one definition spells it.
            #[used]
            #[unsafe(link_section = ".modinfo")]
            static ABI_SECTION: [u8; $crate::modinfo::ABI_ENTRY.len()] =
                $crate::modinfo::bytes($crate::modinfo::ABI_ENTRY);

            // The kernel services' signatures as this module imports them.
            #[used]
            #[unsafe(link_section = ".modinfo")]
            static SERVICE_SIGNATURES: [u8; $crate::modinfo::SERVICE_IMPORTS.len()] =
                $crate::modinfo::bytes($crate::modinfo::SERVICE_IMPORTS);

            #[unsafe(no_mangle)]
            extern "C" fn __module_probe() -> i32 {
                $crate::probe::run_probe($name, $probe)
            }

            $(
                #[unsafe(no_mangle)]
                extern "C" fn __module_selftest() -> i32 {
                    $crate::probe::run_selftest($selftest)
                }
            )?
        };
    };
}

/// The `name=`, `depends=` and `export=` entries [`module!`] writes, as one
/// string (its `abi=` entry, `modinfo::ABI_ENTRY`, goes in a section of its
/// own). Not for direct use: it lets the tests check what the macro writes.
#[doc(hidden)]
#[macro_export]
macro_rules! __modinfo_text {
    (name: $name:literal, depends: [$($dep:literal),*], exports: [$($exp:ident),*]) => {
        $crate::__private::concat!(
            "name=", $name, "\0",
            $("depends=", $dep, "\0",)*
            $("export=", $crate::__private::stringify!($exp), "\0",)*
        )
    };
}

/// Defines functions other modules may call: each becomes a
/// `#[no_mangle] extern "C"` function (list it in `module!`'s `exports`).
/// Use only FFI-safe types (integers, `bool`, references to `#[repr(C)]`
/// types from this crate). Its signature is recorded in `.modinfo`
/// (`export_sig=`), and the prelinker refuses an importer whose
/// [`import_fn!`] declares another one (types compared as written, white
/// space aside: spell them the same on both sides).
///
/// ```ignore
/// module_api::export_fn! {
///     pub fn pci_find_device(vendor: u16, device: u16, index: u32, out: &mut PciDevice) -> bool {
///         /* ... */
///     }
/// }
/// ```
#[macro_export]
macro_rules! export_fn {
    ($(
        $(#[$meta:meta])*
        pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    )*) => {$(
        $(#[$meta])*
        #[unsafe(no_mangle)]
        pub extern "C" fn $name($($arg: $ty),*) $(-> $ret)? $body

        const _: () = {
            const SIG: &str = $crate::__private::concat!(
                "export_sig=", $crate::__private::stringify!($name), ":",
                $crate::__private::signature_text!(($($ty),*) $(-> $ret)?), "\0"
            );
            #[used]
            #[unsafe(link_section = ".modinfo")]
            static EXPORT_SIG: [u8; SIG.len()] = $crate::modinfo::bytes(SIG);
        };
    )*};
}

/// Imports functions another module defines with [`export_fn!`]: emits the
/// `extern "C"` declaration and a safe wrapper of the same name. The module
/// must list the exporter in `module!`'s `depends`; the signature must be
/// the exporter's, with the same FFI-safe types. The signature is recorded
/// in `.modinfo` (`import_sig=`) and the prelinker refuses the module if it
/// is not the exporter's.
///
/// ```ignore
/// module_api::import_fn! {
///     fn pci_find_device(vendor: u16, device: u16, index: u32, out: &mut PciDevice) -> bool;
/// }
/// ```
#[macro_export]
macro_rules! import_fn {
    ($(
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;
    )*) => {$(
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            unsafe extern "C" {
                fn $name($($arg: $ty),*) $(-> $ret)?;
            }
            // SAFETY: the exporting module defines this symbol with
            // `export_fn!`, a safe Rust function; the prelinker resolves it
            // only against a declared dependency whose recorded signature
            // (`export_sig=`) is the one recorded here (`import_sig=`).
            unsafe { $name($($arg),*) }
        }

        const _: () = {
            const SIG: &str = $crate::__private::concat!(
                "import_sig=", $crate::__private::stringify!($name), ":",
                $crate::__private::signature_text!(($($ty),*) $(-> $ret)?), "\0"
            );
            #[used]
            #[unsafe(link_section = ".modinfo")]
            static IMPORT_SIG: [u8; SIG.len()] = $crate::modinfo::bytes(SIG);
        };
    )*};
}

/// Logs at error level: `error!("bad reply {:#x}", v)`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::LogLevel::Error, $crate::__private::format_args!($($arg)+))
    };
}

/// Logs at warning level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::LogLevel::Warn, $crate::__private::format_args!($($arg)+))
    };
}

/// Logs at information level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::LogLevel::Info, $crate::__private::format_args!($($arg)+))
    };
}

/// Logs at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::LogLevel::Debug, $crate::__private::format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(ctx: &mut ProbeContext) -> Result<(), ProbeError> {
        if ctx.module_name() == "macro_test" {
            Err(ProbeError::io(format_args!(
                "scratch register did not hold 0x5a"
            )))
        } else {
            Ok(())
        }
    }

    fn selftest() -> Result<(), ProbeError> {
        Ok(())
    }

    export_fn! {
        /// Doubles.
        pub fn macro_test_twice(x: u32) -> u32 { x * 2 }
    }

    crate::module! {
        name: "macro_test",
        depends: ["pci", "acpi"],
        exports: [macro_test_twice],
        probe: probe,
        selftest: selftest,
    }

    mod imported {
        crate::import_fn! {
            /// The export above, through its C symbol.
            pub fn macro_test_twice(x: u32) -> u32;
        }
    }

    #[test]
    fn import_links_to_export() {
        assert_eq!(imported::macro_test_twice(4), 8);
    }

    #[test]
    fn module_macro_entries() {
        // The shims are reachable through their C names.
        unsafe extern "C" {
            fn __module_probe() -> i32;
            fn __module_selftest() -> i32;
        }
        // SAFETY: defined by `module!` above.
        unsafe {
            assert_eq!(__module_probe(), -(ProbeErrorKind::Io as i32));
            assert_eq!(__module_selftest(), 0);
        }
        assert_eq!(macro_test_twice(21), 42);
    }
}
