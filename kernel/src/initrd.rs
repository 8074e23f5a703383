//! The initrd: module objects to load after boot, handed over as the first
//! PVH boot module (QEMU's `-initrd`; `make run INITRD_MODULES="a.o b.o"`
//! packs them). Its format is the `initrd` crate's: a header, then named,
//! checksummed, 16-byte aligned entries. The frames holding it were
//! reserved by the frame allocator at boot and stay reserved, so entries
//! can be read in place through the direct map.

use core::fmt;
use spin::Once;

/// Why there are no objects to load.
#[derive(Clone, Debug)]
pub enum InitrdError {
    /// The kernel was booted without a boot module.
    Absent,
    /// The boot module is not a valid archive.
    Bad(initrd::Error),
}

impl fmt::Display for InitrdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitrdError::Absent => write!(
                f,
                "no initrd: boot with -initrd (make run INITRD_MODULES=\"a.o b.o\")"
            ),
            InitrdError::Bad(e) => write!(f, "bad initrd: {e}"),
        }
    }
}

static ARCHIVE: Once<Result<initrd::Archive<'static>, InitrdError>> = Once::new();

fn parse() -> Result<initrd::Archive<'static>, InitrdError> {
    let m = crate::pvh::boot_info()
        .and_then(|b| b.modules().first().copied())
        .ok_or(InitrdError::Absent)?;
    // SAFETY: the boot module's frames hold the loader-provided bytes, are
    // reserved from the frame allocator for the kernel's lifetime (so
    // nothing reuses them) and are covered by the direct map read-write,
    // and nothing writes them.
    let bytes: &'static [u8] = unsafe {
        core::slice::from_raw_parts(
            crate::mm::paging::phys_to_virt(m.start) as *const u8,
            m.size as usize,
        )
    };
    let a = initrd::Archive::parse(bytes).map_err(InitrdError::Bad)?;
    log::info!(
        "initrd: {} objects in {} bytes at physical {:#x}",
        a.entries().len(),
        m.size,
        m.start
    );
    Ok(a)
}

/// The archive (parsed on first use).
pub fn archive() -> Result<&'static initrd::Archive<'static>, InitrdError> {
    ARCHIVE.call_once(parse).as_ref().map_err(Clone::clone)
}

/// The bytes of the object called `name`.
pub fn find(name: &str) -> Result<Option<&'static [u8]>, InitrdError> {
    Ok(archive()?.find(name).map(|e| e.data))
}
