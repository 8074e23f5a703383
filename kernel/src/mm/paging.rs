//! The kernel's page tables (4-level, x86_64).
//!
//! [`init`] builds fresh tables and switches to them, dropping the boot
//! tables and with them the low identity map:
//!
//! | virtual range | maps | permissions |
//! |---|---|---|
//! | text range: kernel `.text`, then `.modules.text` | image | R X |
//! | rodata range: kernel `.rodata`, `.kexports`, `.modtable`, then `.modules.rodata` | image | R |
//! | data range: kernel `.data` + `.bss`, then `.modules.data` | image | R W |
//! | [`DIRECT_MAP_BASE`] + phys | all RAM | R W, but R over the text and rodata ranges |
//! | [`IMAGE_ALIAS_BASE`] | text and rodata ranges | R W, only during the module phase ([`map_image_alias`]) |
//!
//! Each class range starts on a 2 MiB boundary and spans whole 2 MiB
//! pages, so each is mapped with 2 MiB pages. No physical frame that holds
//! text or rodata is writable through any mapping: the direct map covers
//! them read-only, and the module phase writes module text and rodata
//! through a temporary alias that is unmapped afterwards
//! ([`unmap_image_alias`]); [`wx_alias_frames`] checks this on the live
//! tables.
//!
//! Other users of the address space: the module-phase image alias at
//! [`IMAGE_ALIAS_BASE`], the module API's uncached MMIO window at
//! `0xffff_c000_0000_0000`, the local APIC, the I/O APIC and the SMP test
//! page at `0xffff_d000_0000_0000` ([`crate::arch::apic`],
//! [`crate::arch::ioapic`]), the boot self-test's
//! scratch range at `0xffff_e000_0000_0000` and the guarded kernel stacks at
//! `0xffff_ff00_0000_0000` ([`crate::mm::stack`]). Pick a fresh PML4 slot
//! for anything new.
//!
//! Everything that is not executable is mapped NX, and no page is ever both
//! writable and executable: [`map_range`] and [`protect_range`] refuse such
//! flags, and [`count_wx_pages`] checks the live tables.
//!
//! The range functions take 4 KiB-aligned addresses and lengths, use 2 MiB
//! pages wherever virtual and physical alignment allow, split a 2 MiB page
//! into 4 KiB pages when only part of it changes, free a page table that
//! became empty, and flush the TLB. They never allocate or free the mapped
//! physical memory itself. Page-table frames come from [`crate::mm::frames`].
//! The functions lock with interrupts disabled and act on the live tables
//! (CR3), which every CPU shares. Reading the tables (statistics, W+X and
//! alias checks) is the host-tested [`pagewalk`] crate's.
//!
//! With other CPUs online, [`unmap_range`] and [`protect_range`] end with a
//! TLB shootdown ([`crate::arch::smp::shootdown`]) before they return, and
//! page tables they empty are freed only after it, so no CPU keeps a stale
//! translation or walks a freed table. (New mappings need none: no CPU
//! caches a not-present entry.) A CPU waiting for the lock flushes pending
//! shootdowns while it spins, so the holder's wait for it always ends.

use core::fmt;

use spin::Mutex;
use x86_64::registers::control::Cr3;

use crate::layout;
use crate::mm::frames::{self, PhysAddr};
use crate::mm::{HUGE_PAGE_SIZE, PAGE_SIZE, align_down, align_up};

/// Virtual address of physical address 0 in the direct map.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Virtual address of the temporary writable alias of the text and rodata
/// ranges (the start of the text range's frames), during the module phase.
pub const IMAGE_ALIAS_BASE: u64 = 0xffff_b000_0000_0000;

const PTE_PRESENT: u64 = 1 << 0;
const PTE_WRITABLE: u64 = 1 << 1;
const PTE_PWT: u64 = 1 << 3;
const PTE_PCD: u64 = 1 << 4;
const PTE_HUGE: u64 = 1 << 7;
const PTE_GLOBAL: u64 = 1 << 8;
const PTE_NX: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const ADDR_MASK_2M: u64 = 0x000f_ffff_ffe0_0000;
const ADDR_MASK_1G: u64 = 0x000f_ffff_c000_0000;
/// Flags of a non-leaf entry: the leaf decides the permissions.
const TABLE_FLAGS: u64 = PTE_PRESENT | PTE_WRITABLE;
/// Leaf flag bits kept when a 2 MiB page is split.
const LEAF_KEEP: u64 = PTE_PRESENT | PTE_WRITABLE | PTE_PWT | PTE_PCD | PTE_GLOBAL | PTE_NX;

/// Direct-map address of physical address `phys`.
pub const fn phys_to_virt(phys: u64) -> u64 {
    DIRECT_MAP_BASE + phys
}

/// Physical address behind `virt`, by walking the live page tables.
pub fn virt_to_phys(virt: u64) -> Option<u64> {
    translate(virt).map(|(phys, _, _)| phys)
}

/// Mapping permissions. Mappings are always readable; the empty set
/// ([`Flags::R`]) is read-only and non-executable.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u8);

impl Flags {
    /// Read-only, not executable.
    pub const R: Flags = Flags(0);
    /// Writable.
    pub const WRITE: Flags = Flags(1);
    /// Executable.
    pub const EXEC: Flags = Flags(2);
    /// Uncached (PCD | PWT), for MMIO.
    pub const NO_CACHE: Flags = Flags(4);
    /// Read + write, not executable.
    pub const RW: Flags = Flags::WRITE;
    /// Read + execute.
    pub const RX: Flags = Flags::EXEC;

    /// True if every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Writable?
    pub const fn writable(self) -> bool {
        self.contains(Flags::WRITE)
    }

    /// Executable?
    pub const fn executable(self) -> bool {
        self.contains(Flags::EXEC)
    }

    fn to_pte(self) -> u64 {
        let mut pte = PTE_PRESENT;
        if self.writable() {
            pte |= PTE_WRITABLE;
        }
        if !self.executable() {
            pte |= PTE_NX;
        }
        if self.contains(Flags::NO_CACHE) {
            pte |= PTE_PCD | PTE_PWT;
        }
        pte
    }

    fn from_pte(pte: u64) -> Flags {
        let mut f = Flags::R;
        if pte & PTE_WRITABLE != 0 {
            f = f | Flags::WRITE;
        }
        if pte & PTE_NX == 0 {
            f = f | Flags::EXEC;
        }
        if pte & PTE_PCD != 0 {
            f = f | Flags::NO_CACHE;
        }
        f
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "R{}{}{}",
            if self.writable() { "W" } else { "" },
            if self.executable() { "X" } else { "" },
            if self.contains(Flags::NO_CACHE) {
                " UC"
            } else {
                ""
            }
        )
    }
}

/// Size of one mapping.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PageSize {
    /// 4 KiB page.
    Size4K,
    /// 2 MiB page.
    Size2M,
    /// 1 GiB page (never created by the kernel, but recognised).
    Size1G,
}

impl PageSize {
    /// Size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => PAGE_SIZE,
            PageSize::Size2M => HUGE_PAGE_SIZE,
            PageSize::Size1G => 1 << 30,
        }
    }

    const fn addr_mask(self) -> u64 {
        match self {
            PageSize::Size4K => ADDR_MASK,
            PageSize::Size2M => ADDR_MASK_2M,
            PageSize::Size1G => ADDR_MASK_1G,
        }
    }
}

/// Why a paging operation was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PagingError {
    /// Address or length not 4 KiB aligned, or length zero.
    Unaligned(u64),
    /// Virtual address not canonical, or the range wraps.
    NonCanonical(u64),
    /// Writable and executable together.
    WriteExec,
    /// [`map_range`]: something is already mapped at this address.
    AlreadyMapped(u64),
    /// [`protect_range`]: nothing is mapped at this address.
    NotMapped(u64),
    /// A 1 GiB page would have to be split.
    HugePage(u64),
    /// No frame for a page table.
    OutOfFrames,
}

impl fmt::Display for PagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PagingError::Unaligned(a) => write!(f, "{a:#x} is not 4 KiB aligned (or empty)"),
            PagingError::NonCanonical(a) => write!(f, "{a:#x} is not a canonical address"),
            PagingError::WriteExec => write!(f, "writable and executable mapping refused"),
            PagingError::AlreadyMapped(a) => write!(f, "{a:#x} is already mapped"),
            PagingError::NotMapped(a) => write!(f, "{a:#x} is not mapped"),
            PagingError::HugePage(a) => write!(f, "{a:#x} is inside a 1 GiB page"),
            PagingError::OutOfFrames => write!(f, "out of frames for page tables"),
        }
    }
}

/// Serialises all page-table changes.
static LOCK: Mutex<()> = Mutex::new(());

fn locked<R>(f: impl FnOnce(u64) -> R) -> R {
    crate::arch::without_interrupts(|| {
        let _guard = loop {
            if let Some(g) = LOCK.try_lock() {
                break g;
            }
            crate::arch::smp::service_shootdown();
            core::hint::spin_loop();
        };
        f(live_root())
    })
}

fn live_root() -> u64 {
    Cr3::read_raw().0.start_address().as_u64()
}

// ---- raw table access -----------------------------------------------------

/// Pointer to entry `idx` of the table at physical `table`.
fn entry(table: u64, idx: usize) -> *mut u64 {
    (phys_to_virt(table) as *mut u64).wrapping_add(idx)
}

fn read(e: *mut u64) -> u64 {
    // SAFETY: `e` points into a page table reached from a live or
    // under-construction root; all page tables are RAM covered by the
    // direct map, and the caller holds `LOCK` (or owns an unpublished root).
    unsafe { e.read_volatile() }
}

fn write(e: *mut u64, value: u64) {
    // SAFETY: as for `read`; the caller flushes the TLB as needed.
    unsafe { e.write_volatile(value) }
}

/// Index of `virt` in a table of `level` (4 = PML4 .. 1 = PT).
const fn index(virt: u64, level: u32) -> usize {
    ((virt >> (12 + 9 * (level - 1))) & 511) as usize
}

/// Bytes covered by one entry of a table of `level`.
const fn granule(level: u32) -> u64 {
    1 << (12 + 9 * (level - 1))
}

fn is_canonical(virt: u64) -> bool {
    let top = virt >> 47;
    top == 0 || top == 0x1ffff
}

enum Walk {
    /// A leaf mapping; `entry` points at its table entry.
    Mapped { entry: *mut u64, size: PageSize },
    /// Nothing mapped in the whole `granule(level)` around the address.
    Unmapped { level: u32 },
}

fn walk(root: u64, virt: u64) -> Walk {
    let mut table = root;
    for level in (2..=4).rev() {
        let e = entry(table, index(virt, level));
        let v = read(e);
        if v & PTE_PRESENT == 0 {
            return Walk::Unmapped { level };
        }
        if v & PTE_HUGE != 0 && level <= 3 {
            let size = if level == 3 {
                PageSize::Size1G
            } else {
                PageSize::Size2M
            };
            return Walk::Mapped { entry: e, size };
        }
        table = v & ADDR_MASK;
    }
    let e = entry(table, index(virt, 1));
    if read(e) & PTE_PRESENT == 0 {
        Walk::Unmapped { level: 1 }
    } else {
        Walk::Mapped {
            entry: e,
            size: PageSize::Size4K,
        }
    }
}

/// Next address after the granule (or page) containing `v`, capped at `end`.
fn skip(v: u64, bytes: u64, end: u64) -> u64 {
    align_down(v, bytes)
        .checked_add(bytes)
        .map_or(end, |next| next.min(end))
}

fn alloc_table() -> Result<u64, PagingError> {
    let p = frames::alloc_zeroed(1, 1).map_err(|_| PagingError::OutOfFrames)?;
    Ok(p.0)
}

/// The table an entry points to, creating it if the entry is empty.
fn table_at(e: *mut u64, virt: u64) -> Result<u64, PagingError> {
    let v = read(e);
    if v & PTE_PRESENT == 0 {
        let t = alloc_table()?;
        write(e, t | TABLE_FLAGS);
        Ok(t)
    } else if v & PTE_HUGE != 0 {
        Err(PagingError::AlreadyMapped(virt))
    } else {
        Ok(v & ADDR_MASK)
    }
}

/// PD entry for `virt`, creating the PDPT and PD on the way.
fn pd_entry(root: u64, virt: u64) -> Result<*mut u64, PagingError> {
    let pdpt = table_at(entry(root, index(virt, 4)), virt)?;
    let pd = table_at(entry(pdpt, index(virt, 3)), virt)?;
    Ok(entry(pd, index(virt, 2)))
}

/// PD entry for `virt` if the PML4 and PDPT entries exist.
fn pd_entry_existing(root: u64, virt: u64) -> Option<*mut u64> {
    let e4 = read(entry(root, index(virt, 4)));
    if e4 & PTE_PRESENT == 0 {
        return None;
    }
    let e3 = read(entry(e4 & ADDR_MASK, index(virt, 3)));
    if e3 & PTE_PRESENT == 0 || e3 & PTE_HUGE != 0 {
        return None;
    }
    Some(entry(e3 & ADDR_MASK, index(virt, 2)))
}

/// Replaces the 2 MiB page at PD entry `e` by a page table of 512 4 KiB
/// pages with the same frames and permissions.
fn split_2m(e: *mut u64) -> Result<(), PagingError> {
    let v = read(e);
    let base = v & ADDR_MASK_2M;
    let keep = v & LEAF_KEEP;
    let pt = alloc_table()?;
    for i in 0..512 {
        write(entry(pt, i), (base + i as u64 * PAGE_SIZE) | keep);
    }
    write(e, pt | TABLE_FLAGS);
    Ok(())
}

/// If the page table under the PD entry for `virt` is empty, unlinks it and
/// returns its frame, to be freed once no CPU can still walk it.
fn unlink_empty_pt(root: u64, virt: u64) -> Option<u64> {
    let pde = pd_entry_existing(root, virt)?;
    let v = read(pde);
    if v & PTE_PRESENT == 0 || v & PTE_HUGE != 0 {
        return None;
    }
    let pt = v & ADDR_MASK;
    if (0..512).any(|i| read(entry(pt, i)) & PTE_PRESENT != 0) {
        return None;
    }
    write(pde, 0);
    Some(pt)
}

fn free_table(pt: u64) {
    if let Err(e) = frames::free(PhysAddr(pt), 1) {
        log::error!("paging: freeing empty page table {pt:#x}: {e}");
    }
}

/// [`flush`], and on the live tables the same on every other online CPU.
/// Any INVLPG or CR3 reload also drops cached paging-structure entries, so
/// page tables unlinked before this can be reused after it.
fn flush_everywhere(root: u64, virt: u64, len: u64) {
    flush(root, virt, len);
    if root == live_root() {
        crate::arch::smp::shootdown(virt, len);
    }
}

fn flush(root: u64, virt: u64, len: u64) {
    if root != live_root() {
        return;
    }
    if len / PAGE_SIZE > 64 {
        x86_64::instructions::tlb::flush_all();
    } else {
        let mut v = virt;
        while v < virt + len {
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(v));
            v += PAGE_SIZE;
        }
    }
}

fn check_range(virt: u64, len: u64) -> Result<u64, PagingError> {
    if len == 0 || !virt.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
        return Err(PagingError::Unaligned(virt));
    }
    let end = virt
        .checked_add(len)
        .ok_or(PagingError::NonCanonical(virt))?;
    if !is_canonical(virt) || !is_canonical(end - 1) || (virt >> 47) != ((end - 1) >> 47) {
        return Err(PagingError::NonCanonical(virt));
    }
    Ok(end)
}

// ---- operations on a given root ---------------------------------------------

fn map_in(root: u64, virt: u64, phys: u64, len: u64, flags: Flags) -> Result<(), PagingError> {
    let end = check_range(virt, len)?;
    if !phys.is_multiple_of(PAGE_SIZE) {
        return Err(PagingError::Unaligned(phys));
    }
    if flags.writable() && flags.executable() {
        return Err(PagingError::WriteExec);
    }
    // Refuse before changing anything if any page is already mapped.
    let mut v = virt;
    while v < end {
        match walk(root, v) {
            Walk::Mapped { .. } => return Err(PagingError::AlreadyMapped(v)),
            Walk::Unmapped { level } => v = skip(v, granule(level), end),
        }
    }
    let pte = flags.to_pte();
    let (mut v, mut p) = (virt, phys);
    while v < end {
        if v.is_multiple_of(HUGE_PAGE_SIZE)
            && p.is_multiple_of(HUGE_PAGE_SIZE)
            && end - v >= HUGE_PAGE_SIZE
        {
            let pde = pd_entry(root, v)?;
            let old = read(pde);
            write(pde, p | pte | PTE_HUGE);
            if old & PTE_PRESENT != 0 {
                // An empty page table (checked above) left by an unmap.
                flush_everywhere(root, v, PAGE_SIZE);
                let _ = frames::free(PhysAddr(old & ADDR_MASK), 1);
            }
            v += HUGE_PAGE_SIZE;
            p += HUGE_PAGE_SIZE;
        } else {
            let pt = table_at(pd_entry(root, v)?, v)?;
            write(entry(pt, index(v, 1)), p | pte);
            v += PAGE_SIZE;
            p += PAGE_SIZE;
        }
    }
    flush(root, virt, len);
    Ok(())
}

fn unmap_in(root: u64, virt: u64, len: u64) -> Result<(), PagingError> {
    let end = check_range(virt, len)?;
    let mut v = virt;
    while v < end {
        match walk(root, v) {
            Walk::Unmapped { level } => v = skip(v, granule(level), end),
            Walk::Mapped {
                size: PageSize::Size1G,
                ..
            } => return Err(PagingError::HugePage(v)),
            Walk::Mapped {
                entry: e,
                size: PageSize::Size2M,
            } => {
                if v.is_multiple_of(HUGE_PAGE_SIZE) && end - v >= HUGE_PAGE_SIZE {
                    write(e, 0);
                    v += HUGE_PAGE_SIZE;
                } else {
                    split_2m(e)?;
                }
            }
            Walk::Mapped {
                entry: e,
                size: PageSize::Size4K,
            } => {
                write(e, 0);
                v += PAGE_SIZE;
            }
        }
    }
    // Unlink the page tables of every touched 2 MiB window that became
    // empty; free them once every CPU has flushed.
    let mut unlinked = [0u64; 16];
    let mut n = 0;
    let mut w = align_down(virt, HUGE_PAGE_SIZE);
    while w < end {
        if let Some(pt) = unlink_empty_pt(root, w) {
            if n == unlinked.len() {
                flush_everywhere(root, virt, len);
                unlinked.iter().for_each(|&pt| free_table(pt));
                n = 0;
            }
            unlinked[n] = pt;
            n += 1;
        }
        w = match w.checked_add(HUGE_PAGE_SIZE) {
            Some(next) => next,
            None => break,
        };
    }
    flush_everywhere(root, virt, len);
    unlinked[..n].iter().for_each(|&pt| free_table(pt));
    Ok(())
}

fn protect_in(root: u64, virt: u64, len: u64, flags: Flags) -> Result<(), PagingError> {
    let end = check_range(virt, len)?;
    if flags.writable() && flags.executable() {
        return Err(PagingError::WriteExec);
    }
    let mut v = virt;
    while v < end {
        match walk(root, v) {
            Walk::Unmapped { .. } => return Err(PagingError::NotMapped(v)),
            Walk::Mapped {
                size: PageSize::Size1G,
                ..
            } => return Err(PagingError::HugePage(v)),
            Walk::Mapped { size, .. } => v = skip(v, size.bytes(), end),
        }
    }
    let pte = flags.to_pte();
    let mut v = virt;
    while v < end {
        match walk(root, v) {
            Walk::Mapped {
                entry: e,
                size: PageSize::Size2M,
            } => {
                if v.is_multiple_of(HUGE_PAGE_SIZE) && end - v >= HUGE_PAGE_SIZE {
                    write(e, (read(e) & ADDR_MASK_2M) | pte | PTE_HUGE);
                    v += HUGE_PAGE_SIZE;
                } else {
                    split_2m(e)?;
                }
            }
            Walk::Mapped { entry: e, .. } => {
                write(e, (read(e) & ADDR_MASK) | pte);
                v += PAGE_SIZE;
            }
            Walk::Unmapped { .. } => unreachable!("checked above, under the lock"),
        }
    }
    flush_everywhere(root, virt, len);
    Ok(())
}

fn translate_in(root: u64, virt: u64) -> Option<(u64, Flags, PageSize)> {
    if !is_canonical(virt) {
        return None;
    }
    match walk(root, virt) {
        Walk::Mapped { entry: e, size } => {
            let v = read(e);
            let phys = (v & size.addr_mask()) + (virt & (size.bytes() - 1));
            Some((phys, Flags::from_pte(v), size))
        }
        Walk::Unmapped { .. } => None,
    }
}

fn count_in(root: u64, virt: u64, len: u64) -> (usize, usize) {
    let (mut n4k, mut n2m) = (0, 0);
    let Some(end) = virt.checked_add(len) else {
        return (0, 0);
    };
    let mut v = align_down(virt, PAGE_SIZE);
    while v < end {
        match walk(root, v) {
            Walk::Unmapped { level } => v = skip(v, granule(level), end),
            Walk::Mapped { size, .. } => {
                match size {
                    PageSize::Size4K => n4k += 1,
                    PageSize::Size2M => n2m += 1,
                    PageSize::Size1G => {}
                }
                v = skip(v, size.bytes(), end);
            }
        }
    }
    (n4k, n2m)
}

/// Leaf statistics of a whole tree.
pub type TableStats = pagewalk::Stats;

/// Reads page tables through the direct map.
struct DirectMap;

impl pagewalk::PhysRead for DirectMap {
    fn read_u64(&self, phys: u64) -> u64 {
        read(phys_to_virt(phys) as *mut u64)
    }
}

fn stats_in(root: u64) -> TableStats {
    pagewalk::stats(&DirectMap, root)
}

// ---- public API on the live tables --------------------------------------------

/// Maps `[virt, virt + len)` to `[phys, phys + len)` with `flags`, using 2 MiB
/// pages where both addresses are 2 MiB aligned and enough length remains.
/// Refuses, changing nothing, if any page in the range is already mapped.
/// If page-table frames run out half-way, part of the range may be mapped.
pub fn map_range(virt: u64, phys: u64, len: u64, flags: Flags) -> Result<(), PagingError> {
    locked(|root| map_in(root, virt, phys, len, flags))
}

/// Unmaps every page in `[virt, virt + len)` (holes are fine), splitting
/// 2 MiB pages that are only partly covered and freeing page tables that
/// become empty. The physical memory is not freed.
pub fn unmap_range(virt: u64, len: u64) -> Result<(), PagingError> {
    locked(|root| unmap_in(root, virt, len))
}

/// Changes the permissions of `[virt, virt + len)`, which must be fully
/// mapped, splitting 2 MiB pages that are only partly covered.
pub fn protect_range(virt: u64, len: u64, flags: Flags) -> Result<(), PagingError> {
    locked(|root| protect_in(root, virt, len, flags))
}

/// Physical address, permissions and page size of the mapping of `virt`.
pub fn translate(virt: u64) -> Option<(u64, Flags, PageSize)> {
    locked(|root| translate_in(root, virt))
}

/// Number of 4 KiB and 2 MiB mappings that overlap `[virt, virt + len)`.
pub fn count_mappings(virt: u64, len: u64) -> (usize, usize) {
    locked(|root| count_in(root, virt, len))
}

/// Number of leaf mappings in the live tables that are both writable and
/// executable (taking every level's W and NX bits into account). Always 0.
pub fn count_wx_pages() -> usize {
    locked(stats_in).wx
}

/// Number of 4 KiB frames that the live tables make writable through one
/// mapping and executable or read-only through another (such as a writable
/// direct-map alias of text). 0 outside the module phase.
pub fn wx_alias_frames() -> u64 {
    let leaves = locked(|root| pagewalk::walk(&DirectMap, root));
    pagewalk::alias_frames(&leaves)
}

/// For the boot self-test of the W^X checkers: clears the NX bit of the
/// 4 KiB leaf mapping `virt` (which must be a writable 4 KiB mapping the
/// caller owns), making it writable and executable behind `map_range`'s
/// refusal, so that [`count_wx_pages`] has one to find. Returns whether it
/// found such a leaf. The caller unmaps it right after.
pub fn plant_wx_for_selftest(virt: u64) -> bool {
    locked(|root| match walk(root, virt) {
        Walk::Mapped {
            entry: e,
            size: PageSize::Size4K,
        } if read(e) & PTE_WRITABLE != 0 => {
            write(e, read(e) & !PTE_NX);
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(virt));
            true
        }
        _ => false,
    })
}

/// Maps the temporary writable, non-executable alias of the text and
/// rodata ranges at [`IMAGE_ALIAS_BASE`], for the module phase.
pub fn map_image_alias() -> Result<(), PagingError> {
    let (start, end) = (layout::text_range().start, layout::rodata_range().end);
    map_range(
        IMAGE_ALIAS_BASE,
        start - layout::KERNEL_VMA,
        end - start,
        Flags::RW,
    )
}

/// Removes the alias [`map_image_alias`] made.
pub fn unmap_image_alias() -> Result<(), PagingError> {
    let (start, end) = (layout::text_range().start, layout::rodata_range().end);
    unmap_range(IMAGE_ALIAS_BASE, end - start)
}

/// The alias address of image byte `va` while [`map_image_alias`] is in
/// effect, for a `va` in the text or rodata range; `None` for others.
pub fn image_alias_of(va: u64) -> Option<u64> {
    let (start, end) = (layout::text_range().start, layout::rodata_range().end);
    (start..end)
        .contains(&va)
        .then(|| IMAGE_ALIAS_BASE + (va - start))
}

/// Leaf and table counts of the live tables.
pub fn stats() -> TableStats {
    locked(stats_in)
}

/// Flushes the whole TLB (non-global entries).
pub fn flush_tlb_all() {
    x86_64::instructions::tlb::flush_all();
}

/// What [`init`] built, for the boot log.
#[derive(Clone, Copy, Debug)]
pub struct InitSummary {
    /// Physical address of the new PML4.
    pub root: u64,
    /// Bytes of physical memory in the direct map.
    pub direct_map_bytes: u64,
    /// Statistics of the new tables.
    pub stats: TableStats,
}

/// Builds the kernel's page tables and switches to them. Needs
/// [`crate::mm::frames::init`]. `ram_top` is the end of physical RAM to put
/// in the direct map.
pub fn init(ram_top: u64) -> Result<InitSummary, PagingError> {
    let _guard = LOCK.lock();
    let root = alloc_table()?;
    let groups = [
        (layout::text_range(), Flags::RX),
        (layout::rodata_range(), Flags::R),
        (layout::data_range(), Flags::RW),
    ];
    for (r, flags) in groups {
        map_in(root, r.start, r.phys_start(), r.len(), flags)?;
    }
    // The direct map: read-only over the frames of the text and rodata
    // ranges, so that no mapping makes them writable.
    let direct = align_up(ram_top, HUGE_PAGE_SIZE);
    let ro = (
        layout::text_range().phys_start().min(direct),
        layout::data_range().phys_start().min(direct),
    );
    for (s, e, flags) in [
        (0, ro.0, Flags::RW),
        (ro.0, ro.1, Flags::R),
        (ro.1, direct, Flags::RW),
    ] {
        if e > s {
            map_in(root, DIRECT_MAP_BASE + s, s, e - s, flags)?;
        }
    }
    let stats = stats_in(root);
    // SAFETY: the new tables map the kernel image (code, stack, data) at the
    // same virtual addresses as the boot tables, and the direct map at the
    // same base, so execution continues seamlessly after the switch.
    unsafe {
        let (_, cr3_flags) = Cr3::read_raw();
        Cr3::write_raw(
            x86_64::structures::paging::PhysFrame::containing_address(x86_64::PhysAddr::new(root)),
            cr3_flags,
        );
    }
    Ok(InitSummary {
        root,
        direct_map_bytes: direct,
        stats,
    })
}
