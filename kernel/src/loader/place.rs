//! Where a loaded module's bytes go, and writing them there.
//!
//! - Text and rodata go to their class's pool ([`reclaim::pool::Pool`]): the
//!   trap-filled tail of the class's last live huge page after the module
//!   phase, plus bytes of unloaded modules, at 64-byte alignment. When the
//!   pool cannot hold a class, a fresh 2 MiB page (contiguous frames) is
//!   mapped for it in the runtime area above the kernel image, RX for text
//!   and R for rodata, and its frames' direct-map alias is made read-only.
//! - Data goes to the heap's data-class arena (the data range's tail, RW+NX
//!   already), or else to fresh RW+NX pages. Never to the main heap: that is
//!   reached through the direct map, outside the top 2 GiB the kernel code
//!   model (32-bit signed and PC-relative fields) needs.
//!
//! Text and rodata pages are never writable through their own mapping nor
//! the direct map. [`write`] maps a temporary RW+NX alias of just the pages
//! written at [`ALIAS_BASE`], copies, and unmaps it, so the huge pages'
//! permissions never change; [`poison`] does the same with `int3` bytes.
//! The writes here are the loader's `unsafe` code, with the two calls into
//! module code in the loader's root module and the initrd's mapping.

use crate::mm::frames;
use crate::mm::paging::{self, Flags, PagingError};
use crate::mm::{HUGE_PAGE_SIZE, PAGE_SIZE, align_down};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::Layout;
use modtable::{Class, PerClass};
use reclaim::align_up;
use reclaim::pool::Pool;

/// Virtual address of the temporary writable alias used to write loaded
/// text and rodata (its own PML4 slot; nothing is mapped there between
/// writes).
pub const ALIAS_BASE: u64 = 0xffff_d800_0000_0000;
/// The byte free pool space and unloaded modules are filled with (`int3`).
pub const TRAP: u8 = 0xcc;
/// Alignment of every placement.
pub const ALIGN: u64 = reclaim::PACK_ALIGN;

/// Which kind of memory a class was placed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Where {
    /// Its class's pool inside the kernel image's huge pages (or bytes an
    /// unloaded built-in left there).
    Pool,
    /// A fresh 2 MiB page taken after boot.
    Fresh,
    /// The heap's data-class arena (the data range's tail).
    HeapTail,
}

impl Where {
    /// Name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Where::Pool => "pool",
            Where::Fresh => "fresh",
            Where::HeapTail => "heap-tail",
        }
    }
}

/// One class of a loaded module: where, how many bytes it uses and how
/// many it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Address.
    pub addr: u64,
    /// Bytes the class uses.
    pub len: u64,
    /// Bytes taken (the heap tail rounds to 64 bytes).
    pub taken: u64,
    /// Alignment asked for.
    pub align: u64,
    /// Which memory.
    pub at: Where,
}

/// A 2 MiB page (or run of them) taken after boot.
#[derive(Clone, Copy, Debug)]
pub struct Fresh {
    /// Class it serves.
    pub class: Class,
    /// Virtual address.
    pub va: u64,
    /// Physical address.
    pub phys: u64,
    /// Bytes.
    pub len: u64,
}

/// The pools and fresh pages of modules loaded after boot.
pub struct Placer {
    /// Text, rodata and (fresh pages only) data pools.
    pub pools: PerClass<Pool>,
    /// Fresh pages, in the order taken.
    pub fresh: Vec<Fresh>,
    /// Where the next fresh page is mapped.
    next_va: u64,
}

/// Mapping permissions of a class.
pub fn class_flags(c: Class) -> Flags {
    match c {
        Class::Text => Flags::RX,
        Class::Rodata => Flags::R,
        Class::Data => Flags::RW,
    }
}

/// Maps the temporary alias of the pages under `[va, va + len)` (each to
/// the frame its live mapping has; runs of contiguous frames at once),
/// hands the alias of those bytes to `f`, and unmaps it.
fn with_alias(va: u64, len: u64, f: impl FnOnce(&mut [u8])) -> Result<(), PagingError> {
    let first = align_down(va, PAGE_SIZE);
    let last = align_up(va + len, PAGE_SIZE);
    let mut p = first;
    let mapped = (|| {
        while p < last {
            let phys = paging::virt_to_phys(p).ok_or(PagingError::NotMapped(p))?;
            let mut q = p + PAGE_SIZE;
            while q < last && paging::virt_to_phys(q) == Some(phys + (q - p)) {
                q += PAGE_SIZE;
            }
            paging::map_range(ALIAS_BASE + (p - first), phys, q - p, Flags::RW)?;
            p = q;
        }
        Ok(())
    })();
    if let Err(e) = mapped {
        let _ = paging::unmap_range(ALIAS_BASE, last - first);
        return Err(e);
    }
    // SAFETY: the alias window was just mapped read-write over exactly the
    // frames behind `[va, va + len)`; nothing else uses the window, and the
    // caller owns those bytes (a placement nothing runs from yet, or one
    // being returned), so this is the only reference to them.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut((ALIAS_BASE + (va - first)) as *mut u8, len as usize)
    };
    f(bytes);
    paging::unmap_range(ALIAS_BASE, last - first)
}

/// Runs `f` on the bytes `[va, va + len)` of class `c` writably: through
/// the temporary alias for text and rodata, in place for data (mapped
/// RW+NX).
fn with_bytes(c: Class, va: u64, len: u64, f: impl FnOnce(&mut [u8])) -> Result<(), String> {
    if len == 0 {
        return Ok(());
    }
    match c {
        Class::Text | Class::Rodata => {
            with_alias(va, len, f).map_err(|e| format!("cannot alias {va:#x}: {e}"))
        }
        Class::Data => {
            // SAFETY: data placements lie in the heap's data arena or in a
            // fresh page, both mapped RW+NX for the kernel's lifetime; the
            // caller owns the placement, so nothing else refers to it.
            f(unsafe { core::slice::from_raw_parts_mut(va as *mut u8, len as usize) });
            Ok(())
        }
    }
}

/// Writes `bytes` at `va` in class `c`.
pub fn write(c: Class, va: u64, bytes: &[u8]) -> Result<(), String> {
    with_bytes(c, va, bytes.len() as u64, |b| b.copy_from_slice(bytes))
}

/// Fills `[va, va + len)` of class `c` with [`TRAP`].
pub fn poison(c: Class, va: u64, len: u64) -> Result<(), String> {
    with_bytes(c, va, len, |b| b.fill(TRAP))
}

/// Frees the `len` bytes of frames at `phys` behind an unmapped fresh page
/// of class `c` (once at `va`). For text and rodata their direct-map alias
/// (made read-only when the page was taken, perhaps only in part) is made
/// writable again first; if that fails the frames are kept out of the
/// allocator rather than handed out read-only.
fn free_fresh_frames(c: Class, va: u64, phys: u64, len: u64) {
    if c != Class::Data
        && let Err(e) = paging::protect_range(paging::phys_to_virt(phys), len, Flags::RW)
    {
        log::error!(
            "loader: frames at {phys:#x} of the fresh page at {va:#x} stay out of use: cannot make their direct map writable: {e}"
        );
        return;
    }
    if let Err(e) = frames::free(frames::PhysAddr(phys), (len / PAGE_SIZE) as usize) {
        log::error!(
            "loader: cannot free the frames at {phys:#x} of the fresh page at {va:#x}: {e:?}"
        );
    }
}

impl Placer {
    /// Pools over the text and rodata tails the module phase left
    /// (trap-filled already); fresh pages go from `runtime_base` up.
    pub fn new(text: Option<(u64, u64)>, rodata: Option<(u64, u64)>, runtime_base: u64) -> Placer {
        let mut pools = PerClass([Pool::new(), Pool::new(), Pool::new()]);
        for (c, r) in [(Class::Text, text), (Class::Rodata, rodata)] {
            if let Some((s, e)) = r {
                let _ = pools[c].add(s, e);
            }
        }
        Placer {
            pools,
            fresh: Vec::new(),
            next_va: runtime_base,
        }
    }

    /// Maps fresh 2 MiB pages for at least `min_len` bytes of class `c`
    /// and adds them to its pool.
    fn take_fresh(&mut self, c: Class, min_len: u64) -> Result<(), String> {
        let len = align_up(min_len.max(1), HUGE_PAGE_SIZE);
        let frames_needed = (len / PAGE_SIZE) as usize;
        let phys = frames::alloc(frames_needed, (HUGE_PAGE_SIZE / PAGE_SIZE) as usize)
            .map_err(|_| format!("no {} MiB of contiguous aligned frames", len >> 20))?
            .0;
        let va = self.next_va;
        let release = |why: String| {
            let _ = paging::unmap_range(va, len);
            free_fresh_frames(c, va, phys, len);
            why
        };
        paging::map_range(va, phys, len, class_flags(c))
            .map_err(|e| release(format!("cannot map a fresh page at {va:#x}: {e}")))?;
        if c != Class::Data {
            // No mapping may make text or rodata frames writable.
            paging::protect_range(paging::phys_to_virt(phys), len, Flags::R)
                .map_err(|e| release(format!("cannot protect the direct map: {e}")))?;
        }
        let fill = if c == Class::Data { 0 } else { TRAP };
        with_bytes(c, va, len, |b| b.fill(fill)).map_err(release)?;
        self.next_va += len;
        self.fresh.push(Fresh {
            class: c,
            va,
            phys,
            len,
        });
        let _ = self.pools[c].add(va, va + len);
        log::info!(
            "loader: {} pool full: took a fresh {} MiB page at {va:#x} (physical {phys:#x}), mapped {:?}",
            c.name(),
            len >> 20,
            class_flags(c)
        );
        Ok(())
    }

    /// Gives back every fresh page no module uses any more (all its bytes
    /// free in its pool): out of the pool, unmapped, and its frames freed
    /// ([`free_fresh_frames`]). A load that failed or a module unloaded so
    /// leaves no fresh page behind.
    pub fn give_back_unused_fresh(&mut self) {
        // Newest first, so the runtime area's top comes down with them.
        for i in (0..self.fresh.len()).rev() {
            let f = self.fresh[i];
            if self.pools[f.class].remove(f.va, f.va + f.len).is_err() {
                continue;
            }
            if let Err(e) = paging::unmap_range(f.va, f.len) {
                // Still mapped: it stays a pool page.
                log::error!(
                    "loader: cannot unmap the fresh {} page at {:#x}: {e}",
                    f.class.name(),
                    f.va
                );
                let _ = self.pools[f.class].add(f.va, f.va + f.len);
                continue;
            }
            free_fresh_frames(f.class, f.va, f.phys, f.len);
            self.fresh.remove(i);
            if f.va + f.len == self.next_va {
                self.next_va = f.va;
            }
            log::info!(
                "loader: {} no longer used: gave back the fresh {} MiB page at {:#x} (physical {:#x})",
                f.class.name(),
                f.len >> 20,
                f.va,
                f.phys
            );
        }
    }

    /// Places `len` bytes of class `c` aligned to `max(align, 64)`.
    pub fn place(&mut self, c: Class, len: u64, align: u64) -> Result<Placement, String> {
        let align = align.max(ALIGN);
        if c == Class::Data {
            let taken = align_up(len, ALIGN);
            let layout = Layout::from_size_align(taken as usize, align as usize)
                .map_err(|_| format!("bad data layout {len} / {align}"))?;
            if let Some(p) = crate::mm::heap::try_alloc_arena(layout) {
                return Ok(Placement {
                    addr: p.as_ptr() as u64,
                    len,
                    taken,
                    align,
                    at: Where::HeapTail,
                });
            }
        }
        let addr = match self.pools[c].alloc(len, align) {
            Some(a) => a,
            None => {
                self.take_fresh(c, len)?;
                self.pools[c]
                    .alloc(len, align)
                    .ok_or_else(|| format!("{len} bytes do not fit a fresh page"))?
            }
        };
        let at = if self
            .fresh
            .iter()
            .any(|f| addr >= f.va && addr < f.va + f.len)
        {
            Where::Fresh
        } else {
            Where::Pool
        };
        Ok(Placement {
            addr,
            len,
            taken: len,
            align,
            at,
        })
    }

    /// Gives a placement back, its bytes poisoned with `int3` first.
    pub fn release(&mut self, c: Class, p: &Placement) -> Result<(), String> {
        poison(c, p.addr, p.taken)?;
        match p.at {
            Where::HeapTail => {
                let layout = Layout::from_size_align(p.taken as usize, p.align as usize)
                    .map_err(|_| String::from("bad data layout"))?;
                let ptr = core::ptr::NonNull::new(p.addr as *mut u8)
                    .ok_or_else(|| String::from("null data placement"))?;
                // SAFETY: the block came from `try_alloc_arena` with this
                // layout, and the loader frees each placement once.
                unsafe { crate::mm::heap::free(ptr, layout) };
                Ok(())
            }
            Where::Pool | Where::Fresh => self.pools[c]
                .free(p.addr, p.taken)
                .map_err(|e| format!("pool refused the free: {e:?}")),
        }
    }

    /// Returns the bytes an unloaded built-in module's class held to the
    /// pool (text and rodata), poisoned; data is only poisoned.
    pub fn adopt_builtin(&mut self, c: Class, addr: u64, len: u64) -> Result<(), String> {
        poison(c, addr, len)?;
        if c != Class::Data {
            self.pools[c]
                .add(addr, addr + len)
                .map_err(|e| format!("pool refused the range: {e:?}"))?;
        }
        Ok(())
    }
}
