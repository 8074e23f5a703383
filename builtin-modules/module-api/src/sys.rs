//! The raw `kapi_*` services (see `modtable::abi` for their contract).
//!
//! On the module target they are the kernel's exports. On the host (where
//! only the pure parts of this crate are unit-tested) they are stubs that
//! panic, so host code links without a kernel; host tests use the fake
//! implementations of the I/O traits instead.

#[cfg(target_os = "none")]
pub use imp::*;
#[cfg(not(target_os = "none"))]
pub use stub::*;

#[cfg(target_os = "none")]
mod imp {
    unsafe extern "C" {
        pub fn kapi_log(level: u32, msg: *const u8, len: usize);
        pub fn kapi_probe_fail(kind: i32, msg: *const u8, len: usize);
        pub fn kapi_panic(msg: *const u8, len: usize) -> !;
        pub fn kapi_port_claim(base: u16, count: u16) -> i32;
        pub fn kapi_port_in(port: u16, width: u32) -> u32;
        pub fn kapi_port_out(port: u16, width: u32, value: u32);
        pub fn kapi_mmio_map(phys: u64, len: u64, virt_out: *mut u64) -> i32;
        pub fn kapi_mmio_read(addr: u64, width: u32) -> u64;
        pub fn kapi_mmio_write(addr: u64, width: u32, value: u64);
        pub fn kapi_pci_read(bdf: u32, offset: u32, width: u32) -> u32;
        pub fn kapi_pci_write(bdf: u32, offset: u32, width: u32, value: u32);
        pub fn kapi_alloc(size: usize, align: usize) -> *mut u8;
        pub fn kapi_free(ptr: *mut u8, size: usize, align: usize);
        pub fn kapi_irq_register(irq: u32, handler: extern "C" fn(usize), data: usize) -> i32;
        pub fn kapi_console_register(write: extern "C" fn(*const u8, usize)) -> i32;
        pub fn kapi_device_register(name: *const u8, len: usize) -> i32;
        pub fn kapi_time_ns() -> u64;
        pub fn kapi_delay_us(us: u64);
        pub fn kapi_acpi_table(sig: *const u8, index: u32, buf: *mut u8, buf_len: usize) -> isize;
    }
}

/// Host stand-ins with the same signatures. Logging is dropped; everything
/// that would touch hardware panics.
#[cfg(not(target_os = "none"))]
#[allow(clippy::missing_safety_doc, missing_docs, dead_code)]
mod stub {
    fn absent(name: &str) -> ! {
        panic!("{name}: kernel service not available on the host")
    }
    pub unsafe fn kapi_log(_level: u32, _msg: *const u8, _len: usize) {}
    pub unsafe fn kapi_probe_fail(_kind: i32, _msg: *const u8, _len: usize) {}
    pub unsafe fn kapi_panic(_msg: *const u8, _len: usize) -> ! {
        absent("kapi_panic")
    }
    pub unsafe fn kapi_port_claim(_base: u16, _count: u16) -> i32 {
        absent("kapi_port_claim")
    }
    pub unsafe fn kapi_port_in(_port: u16, _width: u32) -> u32 {
        absent("kapi_port_in")
    }
    pub unsafe fn kapi_port_out(_port: u16, _width: u32, _value: u32) {
        absent("kapi_port_out")
    }
    pub unsafe fn kapi_mmio_map(_phys: u64, _len: u64, _virt_out: *mut u64) -> i32 {
        absent("kapi_mmio_map")
    }
    pub unsafe fn kapi_mmio_read(_addr: u64, _width: u32) -> u64 {
        absent("kapi_mmio_read")
    }
    pub unsafe fn kapi_mmio_write(_addr: u64, _width: u32, _value: u64) {
        absent("kapi_mmio_write")
    }
    pub unsafe fn kapi_pci_read(_bdf: u32, _offset: u32, _width: u32) -> u32 {
        absent("kapi_pci_read")
    }
    pub unsafe fn kapi_pci_write(_bdf: u32, _offset: u32, _width: u32, _value: u32) {
        absent("kapi_pci_write")
    }
    pub unsafe fn kapi_alloc(_size: usize, _align: usize) -> *mut u8 {
        absent("kapi_alloc")
    }
    pub unsafe fn kapi_free(_ptr: *mut u8, _size: usize, _align: usize) {
        absent("kapi_free")
    }
    pub unsafe fn kapi_irq_register(_irq: u32, _h: extern "C" fn(usize), _data: usize) -> i32 {
        absent("kapi_irq_register")
    }
    pub unsafe fn kapi_console_register(_write: extern "C" fn(*const u8, usize)) -> i32 {
        absent("kapi_console_register")
    }
    pub unsafe fn kapi_device_register(_name: *const u8, _len: usize) -> i32 {
        absent("kapi_device_register")
    }
    pub unsafe fn kapi_time_ns() -> u64 {
        absent("kapi_time_ns")
    }
    pub unsafe fn kapi_delay_us(_us: u64) {
        absent("kapi_delay_us")
    }
    pub unsafe fn kapi_acpi_table(_sig: *const u8, _i: u32, _buf: *mut u8, _len: usize) -> isize {
        absent("kapi_acpi_table")
    }
}
