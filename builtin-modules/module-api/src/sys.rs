//! The raw `kapi_*` services (see `modabi` for their contract).
//!
//! On the module target they are the kernel's exports. On the host (where
//! only the pure parts of this crate are unit-tested) they are stubs that
//! panic, so host code links without a kernel; host tests use the fake
//! implementations of the I/O traits instead.

#[cfg(target_os = "none")]
pub use imp::*;
#[cfg(not(target_os = "none"))]
pub use stub::*;

// Both are generated from the kernel's one list of services and their
// signatures, `modabi::kernel_services!`.

#[cfg(target_os = "none")]
mod imp {
    macro_rules! declare {
        ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
            unsafe extern "C" {
                $(pub fn $name($($arg: $ty),*) $(-> $ret)?;)*
            }
        };
    }
    modabi::kernel_services!(declare);
}

/// Host stand-ins with the same signatures. Logging is dropped; everything
/// that would touch hardware panics.
#[cfg(not(target_os = "none"))]
#[allow(clippy::missing_safety_doc, missing_docs, dead_code, unused_variables)]
mod stub {
    macro_rules! stubs {
        () => {};
        (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> !; $($rest:tt)*) => {
            pub unsafe fn $name($($arg: $ty),*) -> ! {
                absent(::core::stringify!($name))
            }
            stubs!($($rest)*);
        };
        (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; $($rest:tt)*) => {
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                Quiet::quiet(::core::stringify!($name))
            }
            stubs!($($rest)*);
        };
    }
    modabi::kernel_services!(stubs);

    fn absent(name: &str) -> ! {
        panic!("{name}: kernel service not available on the host")
    }

    /// What a service returns on the host: logging and probe failures are
    /// dropped; every other service would touch hardware and panics.
    trait Quiet {
        fn quiet(name: &str) -> Self;
    }
    impl Quiet for () {
        fn quiet(name: &str) {
            if !matches!(name, "kapi_log" | "kapi_probe_fail") {
                absent(name)
            }
        }
    }
    macro_rules! loud {
        ($($t:ty),*) => {$(impl Quiet for $t {
            fn quiet(name: &str) -> $t { absent(name) }
        })*};
    }
    loud!(i32, u32, u64, isize, usize, *mut u8);
}
