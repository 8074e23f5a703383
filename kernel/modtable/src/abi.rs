//! The module ABI: types and numbers shared by the kernel (which implements
//! the `kapi_*` services) and the module API crate (which wraps them).
//!
//! Every service is an `extern "C"` function the kernel exports through its
//! `.kexports` table; [`KERNEL_SERVICES`] lists their names so that both
//! sides, and the prelinker's tests, agree on exactly what a module may link.
//!
//! | service | signature |
//! |---|---|
//! | `kapi_log` | `(level: u32, msg: *const u8, len: usize)` — level as [`LogLevel`] |
//! | `kapi_probe_fail` | `(kind: i32, msg: *const u8, len: usize)` — reason for the running probe, kind a [`ProbeErrorKind`] |
//! | `kapi_panic` | `(msg: *const u8, len: usize) -> !` — the module panicked |
//! | `kapi_port_claim` | `(base: u16, count: u16) -> i32` — 0 or a negative [`Status`] |
//! | `kapi_port_in` | `(port: u16, width: u32) -> u32` — width 1, 2 or 4; port must be claimed |
//! | `kapi_port_out` | `(port: u16, width: u32, value: u32)` |
//! | `kapi_mmio_map` | `(phys: u64, len: u64, virt_out: *mut u64) -> i32` — claims the range and writes the (uncached) virtual address it is reached through; 0 or a negative [`Status`] |
//! | `kapi_mmio_read` | `(addr: u64, width: u32) -> u64` — addr inside a mapping this module claimed |
//! | `kapi_mmio_write` | `(addr: u64, width: u32, value: u64)` |
//! | `kapi_pci_read` | `(bdf: u32, offset: u32, width: u32) -> u32` — configuration mechanism 1; all ones if absent |
//! | `kapi_pci_write` | `(bdf: u32, offset: u32, width: u32, value: u32)` |
//! | `kapi_alloc` | `(size: usize, align: usize) -> *mut u8` — null when out of memory |
//! | `kapi_free` | `(ptr: *mut u8, size: usize, align: usize)` |
//! | `kapi_irq_register` | `(irq: u32, handler: extern "C" fn(usize), data: usize) -> i32` |
//! | `kapi_console_register` | `(write: extern "C" fn(*const u8, usize)) -> i32` |
//! | `kapi_device_register` | `(name: *const u8, len: usize) -> i32` — announce a device this module drives |
//! | `kapi_time_ns` | `() -> u64` — nanoseconds since boot (TSC) |
//! | `kapi_delay_us` | `(us: u64)` — busy wait |
//! | `kapi_acpi_table` | `(sig: *const u8, index: u32, buf: *mut u8, buf_len: usize) -> isize` — copies the `index`th ACPI table with the 4-byte signature `sig` into `buf`; its full length, or a negative [`Status`] |
//!
//! Plus `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp` with their C signatures.
//!
//! A port, MMIO, IRQ or allocation acquired during a probe is recorded against
//! the module; if the probe fails the kernel releases all of it. Touching a
//! port or MMIO address the module did not claim, freeing memory it does not
//! own, or passing a buffer the kernel cannot read (too long, not module
//! memory, unmapped) ends the probe as a violation or fault; a waiting
//! service (`kapi_delay_us`) never waits past the probe's time budget.

/// Names of every symbol the kernel exports to modules.
pub const KERNEL_SERVICES: &[&str] = &[
    "kapi_log",
    "kapi_probe_fail",
    "kapi_panic",
    "kapi_port_claim",
    "kapi_port_in",
    "kapi_port_out",
    "kapi_mmio_map",
    "kapi_mmio_read",
    "kapi_mmio_write",
    "kapi_pci_read",
    "kapi_pci_write",
    "kapi_alloc",
    "kapi_free",
    "kapi_irq_register",
    "kapi_console_register",
    "kapi_device_register",
    "kapi_time_ns",
    "kapi_delay_us",
    "kapi_acpi_table",
    "memcpy",
    "memmove",
    "memset",
    "memcmp",
    "bcmp",
];

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
