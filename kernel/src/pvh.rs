//! Reading the PVH `hvm_start_info` handed over by the boot loader.
//!
//! The structure (Xen's `arch-x86/hvm/start_info.h`, version 1) gives the
//! command line, the RSDP address, an e820-style memory map and the boot
//! modules (QEMU's `-initrd` is one; see [`BootInfo::modules`]). [`init`]
//! copies what the kernel needs into static storage while the boot page
//! tables still map low physical memory, so nothing points back into
//! firmware memory afterwards.

use spin::Once;

use crate::mm::paging::phys_to_virt;

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Most memory-map entries kept.
pub const MAX_REGIONS: usize = 128;
/// Most boot modules kept.
pub const MAX_MODULES: usize = 4;

#[repr(C)]
#[derive(Clone, Copy)]
struct HvmStartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

/// `hvm_modlist_entry`.
#[repr(C)]
#[derive(Clone, Copy)]
struct HvmModlistEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct HvmMemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// Type of a memory-map region (e820 numbering).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemKind {
    /// 1: usable RAM.
    Usable,
    /// 2: reserved.
    Reserved,
    /// 3: ACPI tables, reclaimable after reading them.
    AcpiReclaimable,
    /// 4: ACPI non-volatile storage.
    AcpiNvs,
    /// 5: defective RAM.
    Bad,
    /// Anything else.
    Other(u32),
}

impl MemKind {
    fn from_e820(kind: u32) -> Self {
        match kind {
            1 => MemKind::Usable,
            2 => MemKind::Reserved,
            3 => MemKind::AcpiReclaimable,
            4 => MemKind::AcpiNvs,
            5 => MemKind::Bad,
            k => MemKind::Other(k),
        }
    }

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            MemKind::Usable => "usable",
            MemKind::Reserved => "reserved",
            MemKind::AcpiReclaimable => "ACPI data",
            MemKind::AcpiNvs => "ACPI NVS",
            MemKind::Bad => "bad",
            MemKind::Other(_) => "other",
        }
    }
}

/// One memory-map region `[start, start + size)`.
#[derive(Clone, Copy, Debug)]
pub struct MemRegion {
    /// Physical start address.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Region type.
    pub kind: MemKind,
}

impl MemRegion {
    /// Physical end address (exclusive).
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

/// A boot module: `[start, start + size)` of physical memory the loader
/// filled (QEMU's `-initrd` file).
#[derive(Clone, Copy, Debug, Default)]
pub struct BootModule {
    /// Physical start address.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What the kernel keeps from `hvm_start_info`.
pub struct BootInfo {
    regions: [MemRegion; MAX_REGIONS],
    count: usize,
    modules: [BootModule; MAX_MODULES],
    module_count: usize,
    /// Entries in the firmware map (more than [`MAX_REGIONS`] are dropped).
    pub firmware_entries: usize,
    /// Physical address of the ACPI RSDP, if given.
    pub rsdp: Option<u64>,
    /// Physical address of `hvm_start_info`.
    pub start_info_phys: u64,
}

impl BootInfo {
    /// The memory map, in firmware order.
    pub fn memory_map(&self) -> &[MemRegion] {
        &self.regions[..self.count]
    }

    /// Total bytes of usable RAM.
    pub fn usable_bytes(&self) -> u64 {
        self.usable().map(|r| r.size).sum()
    }

    /// Usable RAM regions.
    pub fn usable(&self) -> impl Iterator<Item = &MemRegion> {
        self.memory_map()
            .iter()
            .filter(|r| r.kind == MemKind::Usable)
    }

    /// End of the highest usable RAM region.
    pub fn usable_top(&self) -> u64 {
        self.usable().map(|r| r.end()).max().unwrap_or(0)
    }

    /// The boot modules (the memory map still calls their bytes usable:
    /// [`crate::mm::frames::init`] reserves them).
    pub fn modules(&self) -> &[BootModule] {
        &self.modules[..self.module_count]
    }
}

static BOOT_INFO: Once<BootInfo> = Once::new();

/// Highest physical address the boot page tables map.
const EARLY_MAPPED: u64 = 4 << 30;

/// Why the start info could not be used.
#[derive(Debug)]
pub enum PvhError {
    /// The pointer is null or outside the early mapping.
    BadPointer(u64),
    /// `magic` is wrong: not booted through PVH.
    BadMagic(u32),
    /// Version 0 has no memory map.
    NoMemoryMap,
}

fn readable(phys: u64, len: u64) -> bool {
    phys != 0 && phys.checked_add(len).is_some_and(|end| end <= EARLY_MAPPED)
}

/// Reads `hvm_start_info` at `phys` and copies the memory map and the
/// command line (into [`crate::cmdline`]). Must run while the boot page
/// tables are live (they map physical 0..4 GiB at the direct-map base).
pub fn init(phys: u64) -> Result<&'static BootInfo, PvhError> {
    if !readable(phys, size_of::<HvmStartInfo>() as u64) {
        return Err(PvhError::BadPointer(phys));
    }
    // SAFETY: the boot tables map physical 0..4 GiB at the direct-map base
    // (checked above); the loader placed a start-info structure there.
    let info = unsafe { core::ptr::read_unaligned(phys_to_virt(phys) as *const HvmStartInfo) };
    if info.magic != START_INFO_MAGIC {
        return Err(PvhError::BadMagic(info.magic));
    }
    if info.version < 1 || info.memmap_entries == 0 {
        return Err(PvhError::NoMemoryMap);
    }

    let mut cmd: &[u8] = &[];
    if readable(info.cmdline_paddr, 1) {
        let max = (crate::cmdline::MAX_LEN as u64 + 1).min(EARLY_MAPPED - info.cmdline_paddr);
        // SAFETY: mapped (checked); the loader stores a NUL-terminated string
        // there, and we stop at the NUL or after MAX_LEN + 1 bytes.
        let bytes = unsafe {
            core::slice::from_raw_parts(phys_to_virt(info.cmdline_paddr) as *const u8, max as usize)
        };
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        cmd = &bytes[..len];
    }
    if crate::cmdline::init(cmd) {
        log::warn!(
            "command line truncated to {} bytes",
            crate::cmdline::MAX_LEN
        );
    }

    let n = info.memmap_entries as usize;
    let entry_size = size_of::<HvmMemmapEntry>() as u64;
    if !readable(info.memmap_paddr, n as u64 * entry_size) {
        return Err(PvhError::BadPointer(info.memmap_paddr));
    }
    let mut boot = BootInfo {
        regions: [MemRegion {
            start: 0,
            size: 0,
            kind: MemKind::Reserved,
        }; MAX_REGIONS],
        count: 0,
        firmware_entries: n,
        rsdp: (info.rsdp_paddr != 0).then_some(info.rsdp_paddr),
        start_info_phys: phys,
        modules: [BootModule::default(); MAX_MODULES],
        module_count: 0,
    };
    let mod_size = size_of::<HvmModlistEntry>() as u64;
    let nr = (info.nr_modules as usize).min(MAX_MODULES);
    if nr > 0 && readable(info.modlist_paddr, nr as u64 * mod_size) {
        for i in 0..nr {
            let p =
                phys_to_virt(info.modlist_paddr + i as u64 * mod_size) as *const HvmModlistEntry;
            // SAFETY: inside the mapped, loader-provided module list
            // (checked above).
            let m = unsafe { core::ptr::read_unaligned(p) };
            if m.size > 0 && readable(m.paddr, m.size) {
                boot.modules[boot.module_count] = BootModule {
                    start: m.paddr,
                    size: m.size,
                };
                boot.module_count += 1;
            }
        }
    }
    for i in 0..n.min(MAX_REGIONS) {
        let p = phys_to_virt(info.memmap_paddr + i as u64 * entry_size) as *const HvmMemmapEntry;
        // SAFETY: inside the mapped, loader-provided array (checked above).
        let e = unsafe { core::ptr::read_unaligned(p) };
        boot.regions[i] = MemRegion {
            start: e.addr,
            size: e.size,
            kind: MemKind::from_e820(e.kind),
        };
        boot.count += 1;
    }
    Ok(BOOT_INFO.call_once(|| boot))
}

/// The boot information (after [`init`]).
pub fn boot_info() -> Option<&'static BootInfo> {
    BOOT_INFO.get()
}
