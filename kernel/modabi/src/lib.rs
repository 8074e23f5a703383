//! The module ABI: types and numbers shared by the kernel (which implements
//! the `kapi_*` services) and the module API crate (which wraps them).
//!
//! Every service is an `extern "C"` function the kernel exports through its
//! `.kexports` table; [`KERNEL_SERVICES`] lists their names so that both
//! sides, and the prelinker's tests, agree on exactly what a module may link.
//!
//! The services and their signatures are written once, in
//! [`kernel_services!`]: the kernel checks each
//! definition against [`sig`] at compile time and records a
//! [`signature_hash`] with each export, module-api declares its imports
//! from the same list, and the prelinker refuses a module whose expected
//! signature differs from the kernel's (or from the exporting module's,
//! for functions modules export to each other).
//!
//! | service | contract |
//! |---|---|
//! | `kapi_log` | level as [`LogLevel`], a message of at most 4096 bytes |
//! | `kapi_probe_fail` | reason for the running probe, kind a [`ProbeErrorKind`] |
//! | `kapi_panic` | the module panicked |
//! | `kapi_port_claim` | 0 or a negative [`Status`] |
//! | `kapi_port_in`, `kapi_port_out` | width 1, 2 or 4; the port must be claimed |
//! | `kapi_mmio_map` | claims and maps uncached, writes the virtual address; a [`Status`] |
//! | `kapi_mmio_read`, `kapi_mmio_write` | an address inside a mapping this module claimed |
//! | `kapi_pci_read`, `kapi_pci_write` | configuration mechanism 1; all ones if absent |
//! | `kapi_alloc`, `kapi_free` | null when out of memory; free with the allocation's size and alignment |
//! | `kapi_irq_register` | a [`Status`] (`Busy` if another module holds the line) |
//! | `kapi_console_register` | a [`Status`] |
//! | `kapi_device_register` | announce a device this module drives (name at most 256 bytes) |
//! | `kapi_time_ns` | nanoseconds since boot (TSC) |
//! | `kapi_delay_us` | busy wait, cut off at the probe's deadline |
//! | `kapi_percpu_ptr` | CPU `cpu`'s copy (`u32::MAX`: the calling CPU's) of the per-CPU variable whose template is at `template` in the calling module's per-CPU template; 0 if out of range |
//! | `kapi_percpu_cpus` | CPUs with per-CPU copies (indices `0..n`) |
//! | `kapi_percpu_check` | runs a call on every CPU that looks up `template` there; the number of CPUs whose copy is their own and distinct, or a negative [`Status`] (`Invalid`: copies alias or a CPU saw another's) |
//! | `kapi_acpi_table` | copies the `index`th ACPI table with the 4-byte signature into the buffer; its full length, or a negative [`Status`] |
//!
//! Plus `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp` with their C
//! signatures (fixed by the compiler; exported with signature hash 0).
//!
//! A port, MMIO, IRQ or allocation acquired during a probe is recorded against
//! the module; if the probe fails the kernel releases all of it. Touching a
//! port or MMIO address the module did not claim ends the probe as a fault.
//!
//! The [`modinfo`] module describes the `.modinfo` section a module object
//! carries (its name, ABI version, dependencies, exports and signatures).
//!
//! This crate is `no_std`, has no dependencies and builds (and is tested) on
//! the host. The image and module table format is the `modtable` crate.

#![no_std]

pub mod kexports;
pub mod modinfo;

/// The kernel services with their signatures, the one list: calls
/// `$callback!` with `fn name(arg: Type, ...) -> Ret;` items.
#[macro_export]
macro_rules! kernel_services {
    ($callback:path) => {
        $callback! {
            fn kapi_log(level: u32, msg: *const u8, len: usize);
            fn kapi_probe_fail(kind: i32, msg: *const u8, len: usize);
            fn kapi_panic(msg: *const u8, len: usize) -> !;
            fn kapi_port_claim(base: u16, count: u16) -> i32;
            fn kapi_port_in(port: u16, width: u32) -> u32;
            fn kapi_port_out(port: u16, width: u32, value: u32);
            fn kapi_mmio_map(phys: u64, len: u64, virt_out: *mut u64) -> i32;
            fn kapi_mmio_read(addr: u64, width: u32) -> u64;
            fn kapi_mmio_write(addr: u64, width: u32, value: u64);
            fn kapi_pci_read(bdf: u32, offset: u32, width: u32) -> u32;
            fn kapi_pci_write(bdf: u32, offset: u32, width: u32, value: u32);
            fn kapi_alloc(size: usize, align: usize) -> *mut u8;
            fn kapi_free(ptr: *mut u8, size: usize, align: usize);
            fn kapi_irq_register(irq: u32, handler: extern "C" fn(usize), data: usize) -> i32;
            fn kapi_console_register(write: extern "C" fn(*const u8, usize)) -> i32;
            fn kapi_device_register(name: *const u8, len: usize) -> i32;
            fn kapi_time_ns() -> u64;
            fn kapi_delay_us(us: u64);
            fn kapi_acpi_table(sig: *const u8, index: u32, buf: *mut u8, buf_len: usize) -> isize;
            fn kapi_percpu_ptr(template: usize, cpu: u32) -> usize;
            fn kapi_percpu_cpus() -> u32;
            fn kapi_percpu_check(template: usize) -> i32;
        }
    };
}

/// The signature text of a function, as the signature checks compare it:
/// `stringify!` of `fn(types) -> ret`.
#[macro_export]
macro_rules! signature_text {
    (($($ty:ty),*) $(-> $ret:ty)?) => {
        ::core::stringify!(fn($($ty),*) $(-> $ret)?)
    };
}

macro_rules! service_table {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        /// Every kernel service: its name and signature text.
        pub const SERVICE_SIGNATURES: &[(&str, &str)] = &[
            $((::core::stringify!($name), $crate::signature_text!(($($ty),*) $(-> $ret)?)),)*
        ];

        /// The function pointer type of each kernel service; the kernel's
        /// definitions must coerce to these (checked at compile time).
        #[allow(non_camel_case_types)]
        pub mod sig {
            $(
                #[doc = ::core::concat!("`", ::core::stringify!($name), "`.")]
                pub type $name = unsafe extern "C" fn($($ty),*) $(-> $ret)?;
            )*
        }
    };
}

kernel_services!(service_table);

/// The C library functions the kernel exports (unchecked signatures).
pub const LIBC_EXPORTS: &[&str] = &["memcpy", "memmove", "memset", "memcmp", "bcmp"];

/// Names of every symbol the kernel exports to modules.
pub const KERNEL_SERVICES: &[&str] = &{
    let mut out = [""; SERVICE_SIGNATURES.len() + LIBC_EXPORTS.len()];
    let mut i = 0;
    while i < SERVICE_SIGNATURES.len() {
        out[i] = SERVICE_SIGNATURES[i].0;
        i += 1;
    }
    let mut j = 0;
    while j < LIBC_EXPORTS.len() {
        out[i + j] = LIBC_EXPORTS[j];
        j += 1;
    }
    out
};

/// The hash a signature text is recorded and compared by: FNV-1a over its
/// bytes but white space (so that how `stringify!` spaces tokens does not
/// matter), never 0 (0 marks an unchecked export).
pub const fn signature_hash(text: &str) -> u64 {
    let b = text.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_whitespace() {
            h ^= b[i] as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        i += 1;
    }
    if h == 0 { 1 } else { h }
}

/// The signature text of kernel service `name`, if it is one.
pub const fn service_signature(name: &str) -> Option<&'static str> {
    let mut i = 0;
    while i < SERVICE_SIGNATURES.len() {
        if str_eq(SERVICE_SIGNATURES[i].0, name) {
            return Some(SERVICE_SIGNATURES[i].1);
        }
        i += 1;
    }
    None
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Status values returned by services (0 is success).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The resource is already claimed by the kernel or another module.
    Busy = -1,
    /// The arguments are invalid (zero length, bad width, range wraps).
    Invalid = -2,
    /// Out of memory.
    NoMemory = -3,
    /// The thing asked for does not exist (no such ACPI table, IRQ out of range).
    NotFound = -4,
    /// The service may only be called during the module's probe.
    NotProbing = -5,
}

impl Status {
    /// Decodes a status returned by a service.
    pub fn from_i32(v: i32) -> Option<Status> {
        Some(match v {
            0 => Status::Ok,
            -1 => Status::Busy,
            -2 => Status::Invalid,
            -3 => Status::NoMemory,
            -4 => Status::NotFound,
            -5 => Status::NotProbing,
            _ => return None,
        })
    }
}

/// Why a probe failed (the report shows it with the module's own message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum ProbeErrorKind {
    /// The hardware is not there.
    NoDevice = 1,
    /// The hardware is there but this driver cannot drive it.
    Unsupported = 2,
    /// The hardware did not behave (self-test failed, bad reply).
    Io = 3,
    /// The hardware did not answer in time.
    Timeout = 4,
    /// A resource the driver needs is taken.
    Busy = 5,
    /// Out of memory.
    NoMemory = 6,
}

impl ProbeErrorKind {
    /// Decodes a kind; unknown values are `None`.
    pub fn from_i32(v: i32) -> Option<ProbeErrorKind> {
        Some(match v {
            1 => ProbeErrorKind::NoDevice,
            2 => ProbeErrorKind::Unsupported,
            3 => ProbeErrorKind::Io,
            4 => ProbeErrorKind::Timeout,
            5 => ProbeErrorKind::Busy,
            6 => ProbeErrorKind::NoMemory,
            _ => return None,
        })
    }

    /// Short name used in the report (`no-device`, `io`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ProbeErrorKind::NoDevice => "no-device",
            ProbeErrorKind::Unsupported => "unsupported",
            ProbeErrorKind::Io => "io",
            ProbeErrorKind::Timeout => "timeout",
            ProbeErrorKind::Busy => "busy",
            ProbeErrorKind::NoMemory => "no-memory",
        }
    }
}

/// Log levels of `kapi_log` (the `log` crate's numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum LogLevel {
    /// Error.
    Error = 1,
    /// Warning.
    Warn = 2,
    /// Information.
    Info = 3,
    /// Debugging.
    Debug = 4,
    /// Tracing.
    Trace = 5,
}

/// Packs a PCI bus/device/function into the `bdf` argument of the PCI services.
pub const fn bdf(bus: u8, device: u8, function: u8) -> u32 {
    (bus as u32) << 8 | ((device & 0x1f) as u32) << 3 | (function & 7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_have_distinct_signature_hashes_per_text() {
        let log = service_signature("kapi_log").unwrap();
        assert_eq!(
            signature_hash(log),
            signature_hash("fn(u32,*const u8,usize)")
        );
        assert_eq!(
            signature_hash(log),
            signature_hash("fn(u32, * const u8, usize)")
        );
        let panic = service_signature("kapi_panic").unwrap();
        assert_eq!(
            signature_hash(panic),
            signature_hash("fn(*const u8, usize) -> !")
        );
        assert_eq!(service_signature("memcpy"), None);
        assert_ne!(
            signature_hash("fn(u32, *const u8, usize)"),
            signature_hash("fn(u32, *const u8, u32)")
        );
        assert_eq!(KERNEL_SERVICES.len(), SERVICE_SIGNATURES.len() + 5);
        assert!(KERNEL_SERVICES.contains(&"kapi_acpi_table") && KERNEL_SERVICES.contains(&"bcmp"));
    }
}
