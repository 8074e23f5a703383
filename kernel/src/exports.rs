//! The kernel's export table for modules.
//!
//! Each [`KernelExport`] record is 64 bytes: a NUL-padded name (at most 47
//! bytes, so always NUL-terminated), the hash of the symbol's signature
//! ([`modabi::signature_hash`] of its text in
//! [`modabi::kernel_services!`]; 0 for the C library functions, whose
//! signatures the compiler fixes) and the symbol's absolute virtual
//! address. The records sit in the `.kexports` section between
//! `__kexports_start` and `__kexports_end`; the prelinker reads them from the
//! kernel ELF to resolve module references. The kernel links non-PIE with a
//! static relocation model, so the address in the file is final.
//!
//! Export a function with [`export_symbol!`](crate::export_symbol):
//!
//! ```ignore
//! #[unsafe(no_mangle)]
//! pub extern "C" fn kernel_log(level: u32, msg: *const u8, len: usize) { ... }
//! crate::export_symbol!(kernel_log);                 // name = "kernel_log"
//! crate::export_symbol!(some::path::to_fn);          // name = "to_fn"
//! crate::export_symbol!(some::path::to_fn, "alias"); // explicit name
//! ```
//!
//! The name should be the symbol name modules use, i.e. the `#[no_mangle]`
//! name of an `extern "C"` item.

/// Length of the name field (`modabi::kexports`, the record's one
/// definition).
pub const NAME_LEN: usize = modabi::kexports::NAME_LEN;

/// One export record (64 bytes, `#[repr(C)]`).
#[repr(C)]
pub struct KernelExport {
    /// Symbol name, NUL-padded.
    pub name: [u8; NAME_LEN],
    /// Hash of the signature modules must import it with (0: unchecked).
    pub sig_hash: u64,
    /// Absolute virtual address.
    pub addr: *const (),
}

/// The signature hash recorded for export `name`: its kernel service
/// signature's, or 0 for a symbol that is not a kernel service.
pub const fn sig_hash_of(name: &str) -> u64 {
    match modabi::service_signature(name) {
        Some(text) => modabi::signature_hash(text),
        None => 0,
    }
}

// Every kernel service of the one list is defined with exactly its
// signature: each definition must coerce to the list's function type.
macro_rules! check_definitions {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        $(const _: modabi::sig::$name = crate::kapi::$name;)*
    };
}
modabi::kernel_services!(check_definitions);

// The record is laid out as `modabi::kexports` defines it.
const _: () = {
    use modabi::kexports::{ADDR_AT, RECORD_SIZE, SIG_AT};
    assert!(size_of::<KernelExport>() == RECORD_SIZE);
    assert!(core::mem::offset_of!(KernelExport, sig_hash) == SIG_AT);
    assert!(core::mem::offset_of!(KernelExport, addr) == ADDR_AT);
};

// SAFETY: records are immutable and `addr` is only an address, never
// dereferenced through the record.
unsafe impl Sync for KernelExport {}

impl KernelExport {
    /// The name up to the first NUL.
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }

    /// The address.
    pub fn addr(&self) -> u64 {
        self.addr as u64
    }
}

/// Builds a NUL-padded name field at compile time (fails to compile if the
/// name is empty or longer than 47 bytes).
pub const fn export_name(name: &str) -> [u8; NAME_LEN] {
    let b = name.as_bytes();
    assert!(
        !b.is_empty() && b.len() < NAME_LEN,
        "export name must be 1..=47 bytes"
    );
    let mut out = [0u8; NAME_LEN];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// All export records in the image.
pub fn exports() -> &'static [KernelExport] {
    let r = crate::layout::kexports();
    let n = r.len() as usize / size_of::<KernelExport>();
    // SAFETY: the linker script collects exactly the `KernelExport` statics
    // emitted by `export_symbol!` between these symbols, 64-byte aligned.
    unsafe { core::slice::from_raw_parts(r.start as *const KernelExport, n) }
}

/// The export record called `name`.
pub fn find_export(name: &str) -> Option<&'static KernelExport> {
    exports().iter().find(|e| e.name() == name)
}

/// Address of the export called `name`.
pub fn find(name: &str) -> Option<u64> {
    exports()
        .iter()
        .find(|e| e.name() == name)
        .map(|e| e.addr())
}

/// Emits a [`KernelExport`] record for a function into `.kexports`.
/// See the [module docs](crate::exports).
#[macro_export]
macro_rules! export_symbol {
    ($($seg:ident)::+ , $name:expr) => {
        const _: () = {
            // The record's placement is this macro's business: the one
            // `link_section` of an export, wherever unsafe code is denied.
            #[allow(unsafe_code)]
            #[used]
            #[unsafe(link_section = ".kexports")]
            static EXPORT: $crate::exports::KernelExport = $crate::exports::KernelExport {
                name: $crate::exports::export_name($name),
                sig_hash: $crate::exports::sig_hash_of($name),
                addr: $($seg)::+ as *const (),
            };
        };
    };
    ($($seg:ident)::+) => {
        $crate::export_symbol!($($seg)::+, $crate::__export_last_ident!($($seg)+));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_last_ident {
    ($last:ident) => {
        stringify!($last)
    };
    ($first:ident $($rest:ident)+) => {
        $crate::__export_last_ident!($($rest)+)
    };
}
