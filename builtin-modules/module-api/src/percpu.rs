//! Per-CPU variables: [`percpu!`](crate::percpu!) places a template in the
//! module's `.percpu` section; the kernel gives every CPU its own copy of
//! the module's per-CPU template (made when the module is probed, freed on
//! every CPU if it is expunged) and [`PerCpu::this_cpu`] /
//! [`PerCpu::on_cpu`] find those copies through `kapi_percpu_ptr`.
//!
//! The template itself is never used as a variable: module code reaches
//! only the copies.

use crate::sys;
use core::cell::UnsafeCell;

/// A per-CPU variable of type `T` (declare it with [`percpu!`](crate::percpu!)).
///
/// The wrapper holds the template in an `UnsafeCell` so that its section is
/// always writable data, whatever `T` is; the template's bytes are only
/// read by the kernel, to initialise each CPU's copy.
#[repr(transparent)]
pub struct PerCpu<T: Sync> {
    template: UnsafeCell<T>,
}

// SAFETY: module code never reads or writes the template through this
// wrapper (only its address is taken); the copies it hands out are shared
// `&T` with `T: Sync`.
unsafe impl<T: Sync> Sync for PerCpu<T> {}

/// Why [`check_each_cpu`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// The variable has no copies (not a per-CPU template of this module).
    NoCopies,
    /// Two CPUs share a copy, or a CPU's own lookup gave another's copy.
    Aliased,
    /// Another failure (a negative status from the kernel).
    Other(i32),
}

impl<T: Sync> PerCpu<T> {
    /// A template holding `init` (used by [`percpu!`](crate::percpu!)).
    #[doc(hidden)]
    pub const fn new(init: T) -> Self {
        PerCpu {
            template: UnsafeCell::new(init),
        }
    }

    fn template_addr(&'static self) -> usize {
        self.template.get() as usize
    }

    fn copy(&'static self, cpu: u32) -> Option<&'static T> {
        // SAFETY: the service only maps an address to the kernel's copy
        // for that CPU; it reads nothing through it.
        let p = unsafe { sys::kapi_percpu_ptr(self.template_addr(), cpu) };
        // SAFETY: a non-zero answer is the address of a CPU's copy of this
        // template: a 64-byte aligned heap block initialised from the
        // template's bytes (a valid `T`), alive as long as the module is
        // kept, which is as long as this module's code can run; shared use
        // is fine because `T: Sync`.
        (p != 0).then(|| unsafe { &*(p as *const T) })
    }

    /// The calling CPU's copy.
    ///
    /// Panics if the kernel has no copy for this variable (it is not in a
    /// probed module's per-CPU template).
    pub fn this_cpu(&'static self) -> &'static T {
        match self.copy(u32::MAX) {
            Some(v) => v,
            None => panic!("per-CPU variable without a copy on this CPU"),
        }
    }

    /// CPU `cpu`'s copy (`None` if there is no such CPU).
    pub fn on_cpu(&'static self, cpu: usize) -> Option<&'static T> {
        u32::try_from(cpu)
            .ok()
            .filter(|&c| c != u32::MAX)
            .and_then(|c| self.copy(c))
    }
}

/// One more than the highest CPU index with per-CPU copies: CPUs have
/// indices below it (a CPU that did not start is a hole, whose
/// [`PerCpu::on_cpu`] is `None`).
pub fn cpus() -> usize {
    // SAFETY: the service takes no arguments.
    unsafe { sys::kapi_percpu_cpus() as usize }
}

/// Asks the kernel to look `var` up on every CPU, on that CPU (an IPI
/// call), and to check that each CPU's own lookup is that CPU's copy and
/// that no two CPUs share one. The number of CPUs checked.
pub fn check_each_cpu<T: Sync>(var: &'static PerCpu<T>) -> Result<usize, CheckError> {
    // SAFETY: the service only compares addresses.
    let r = unsafe { sys::kapi_percpu_check(var.template_addr()) };
    match r {
        n if n >= 0 => Ok(n as usize),
        -2 => Err(CheckError::Aliased),
        -4 => Err(CheckError::NoCopies),
        e => Err(CheckError::Other(e)),
    }
}

/// Declares per-CPU variables: each CPU gets its own copy of `init`.
///
/// ```ignore
/// module_api::percpu! {
///     /// Bytes this CPU wrote.
///     static WRITTEN: AtomicU64 = AtomicU64::new(0);
/// }
/// WRITTEN.this_cpu().fetch_add(1, Ordering::Relaxed);
/// ```
#[macro_export]
macro_rules! percpu {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $ty:ty = $init:expr;)*) => {
        $(
            $(#[$attr])*
            #[unsafe(link_section = ".percpu")]
            $vis static $name: $crate::percpu::PerCpu<$ty> = $crate::percpu::PerCpu::new($init);
        )*
    };
}
