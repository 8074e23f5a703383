//! Modules' per-CPU data: one copy of a module's per-CPU template per CPU,
//! made when the module is probed and freed on every CPU if it is
//! expunged; `kapi_percpu_ptr`, `kapi_percpu_cpus` and `kapi_percpu_check`.
//!
//! The template is the module's `.percpu*` sections, which the prelinker
//! puts in one 64-byte aligned sub-range of the module's data class (the
//! record's `percpu_off`/`percpu_size`). Each copy is its own 64-byte
//! aligned heap block of the template's size rounded up to 64, so a CPU's
//! per-CPU bytes are the kernel's own area plus exactly the kept modules'
//! copies, packed at 64 B per module; nothing is reserved in advance.
//!
//! The table of copies is read without locks (IRQ handlers and console
//! writes on any CPU look copies up): a module's entries are written by
//! the boot CPU before its probe runs and cleared (after the module's code
//! can no longer run) when it is expunged.

use super::service;
use crate::arch::percpu::{self, MAX_CPUS};
use crate::mm::heap::Block;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
const _: () = assert!(MAX_CPUS <= 64);
use modabi::Status;
use spin::{Mutex, Once};

/// Alignment and packing unit of a copy.
pub const COPY_ALIGN: usize = 64;

/// The heap could not hold a module's per-CPU copies.
#[derive(Clone, Copy, Debug)]
pub struct OutOfMemory;

/// One module's copies.
struct Copies {
    /// Address of the template (where the module's data lives now).
    template: AtomicU64,
    /// Template bytes (0: no copies).
    len: AtomicU64,
    /// Each CPU's copy (0: none), by CPU index: the address of one of
    /// `blocks`, for lookups without a lock.
    copy: [AtomicUsize; MAX_CPUS],
    /// The heap blocks of the copies, freed by dropping them.
    blocks: Mutex<Vec<Block>>,
}

static TABLE: Once<Vec<Copies>> = Once::new();
/// The CPUs that get copies, one bit per CPU index (the CPUs online when
/// the table is made; a CPU that did not start leaves a hole).
static MASK: AtomicU64 = AtomicU64::new(0);

/// Makes the (empty) table for `modules` boot modules, for the CPUs that
/// are online now.
pub fn init(modules: usize) {
    let mask = percpu::online().fold(0u64, |m, c| m | 1 << c.index);
    MASK.store(mask.max(1), Ordering::Release);
    TABLE.call_once(|| {
        (0..modules)
            .map(|_| Copies {
                template: AtomicU64::new(0),
                len: AtomicU64::new(0),
                copy: [const { AtomicUsize::new(0) }; MAX_CPUS],
                blocks: Mutex::new(Vec::new()),
            })
            .collect()
    });
}

/// CPUs with copies.
pub fn cpus() -> usize {
    MASK.load(Ordering::Acquire).count_ones() as usize
}

/// One more than the highest CPU index with copies.
pub fn bound() -> usize {
    64 - MASK.load(Ordering::Acquire).leading_zeros() as usize
}

/// Whether CPU `cpu` has copies.
fn has(cpu: usize) -> bool {
    cpu < 64 && MASK.load(Ordering::Acquire) & (1 << cpu) != 0
}

/// The CPUs with copies, by index.
fn each() -> impl Iterator<Item = usize> {
    (0..bound()).filter(|&c| has(c))
}

/// Bytes one copy of `len` template bytes takes (packed at 64 B).
pub fn packed(len: u64) -> u64 {
    len.next_multiple_of(COPY_ALIGN as u64)
}

fn layout(len: u64) -> Layout {
    // Sizes come from the validated table (below 4 GiB) and the alignment
    // is a power of two, so this cannot fail.
    Layout::from_size_align(packed(len) as usize, COPY_ALIGN).expect("per-CPU copy layout")
}

/// Makes module `module`'s copies of its template (`len` bytes at
/// `template`, where the module is about to be probed) on every CPU.
/// `Err` if the heap is full (whatever was made is freed again).
pub fn allocate(module: usize, template: u64, len: u64) -> Result<(), OutOfMemory> {
    let Some(m) = TABLE.get().and_then(|t| t.get(module)) else {
        return Err(OutOfMemory);
    };
    if len == 0 {
        return Ok(());
    }
    // The length first (a partial allocation is freed with it), the
    // template address last (lookups need it).
    m.len.store(len, Ordering::Release);
    for cpu in each() {
        let fill = |b: &mut [u8]| {
            let (bytes, pad) = b.split_at_mut(len as usize);
            // The template is the module's own data class, mapped: a fault
            // copying it is a kernel bug.
            crate::mm::module_mem::read(template, bytes)
                .expect("copying a module's per-CPU template");
            pad.fill(0);
        };
        let Some(block) = Block::try_new_with(layout(len), fill) else {
            free(module);
            return Err(OutOfMemory);
        };
        m.copy[cpu].store(block.addr(), Ordering::Release);
        m.blocks.lock().push(block);
    }
    m.template.store(template, Ordering::Release);
    Ok(())
}

/// Frees module `module`'s copies on every CPU (after a failed probe, once
/// its code can no longer run); the bytes freed over all CPUs.
pub fn free(module: usize) -> u64 {
    let Some(m) = TABLE.get().and_then(|t| t.get(module)) else {
        return 0;
    };
    m.template.store(0, Ordering::Release);
    m.len.store(0, Ordering::Release);
    for c in &m.copy {
        c.store(0, Ordering::Release);
    }
    // Nothing looks the copies up any more: drop their blocks.
    let blocks = core::mem::take(&mut *m.blocks.lock());
    let freed = blocks
        .iter()
        .map(|b| packed(b.layout().size() as u64))
        .sum();
    drop(blocks);
    freed
}

/// The copy for `cpu` (`u32::MAX`: the calling CPU) of the byte at
/// `template` in a module's template: the running module's if it is a
/// boot module, else any module's whose template holds it. 0 if none.
pub fn lookup(template: usize, cpu: u32) -> usize {
    let Some(t) = TABLE.get() else { return 0 };
    let cpu = if cpu == u32::MAX {
        percpu::index()
    } else {
        cpu as usize
    };
    if !has(cpu) {
        return 0;
    }
    let find = |m: &Copies| {
        let base = m.template.load(Ordering::Acquire) as usize;
        let len = m.len.load(Ordering::Acquire) as usize;
        (len > 0 && template >= base && template < base + len).then(|| {
            let c = m.copy[cpu].load(Ordering::Acquire);
            if c == 0 { 0 } else { c + (template - base) }
        })
    };
    match t.get(super::owner()) {
        Some(m) => find(m).unwrap_or(0),
        None => t.iter().find_map(find).unwrap_or(0),
    }
}

/// CPU `cpu`'s copy (`u32::MAX`: the calling CPU's) of the per-CPU
/// variable at `template`; 0 if out of range.
pub extern "C" fn kapi_percpu_ptr(template: usize, cpu: u32) -> usize {
    service("kapi_percpu_ptr", || Ok(lookup(template, cpu)))
}
crate::export_symbol!(kapi_percpu_ptr);

/// One more than the highest CPU index with per-CPU copies.
pub extern "C" fn kapi_percpu_cpus() -> u32 {
    service("kapi_percpu_cpus", || Ok(bound() as u32))
}
crate::export_symbol!(kapi_percpu_cpus);

/// Runs a lookup of `template` on every CPU with copies, on that CPU, and
/// checks each found its own copy and no two share one.
pub extern "C" fn kapi_percpu_check(template: usize) -> i32 {
    service("kapi_percpu_check", || Ok(check(template)))
}
crate::export_symbol!(kapi_percpu_check);

fn check(template: usize) -> i32 {
    let cpus: Vec<usize> = each().collect();
    let expected: Vec<usize> = cpus.iter().map(|&c| lookup(template, c as u32)).collect();
    if expected.contains(&0) {
        return Status::NotFound as i32;
    }
    let owner = super::owner();
    let seen: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
    for (&cpu, slot) in cpus.iter().zip(&seen) {
        let f = || {
            super::run_as(owner, || {
                slot.store(lookup(template, u32::MAX), Ordering::Release)
            })
        };
        if crate::arch::smp::call_on(cpu, &f).is_err() {
            return Status::Busy as i32;
        }
    }
    for (i, &cpu) in cpus.iter().enumerate() {
        let got = seen[i].load(Ordering::Acquire);
        let shared = expected[..i].contains(&expected[i]);
        if got != expected[i] || shared {
            log::error!(
                "per-CPU check of {template:#x}: CPU {cpu} sees {got:#x}, its copy is {:#x}{}",
                expected[i],
                if shared {
                    " (shared with another CPU)"
                } else {
                    ""
                }
            );
            return Status::Invalid as i32;
        }
    }
    cpus.len() as i32
}
