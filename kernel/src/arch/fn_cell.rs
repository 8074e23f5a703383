//! [`AtomicFn`]: an optional function pointer that interrupt handlers and
//! the code they interrupt can read and replace without a lock.
//!
//! Hooks, IRQ handlers and console sinks are stored this way. The cell keeps
//! the pointer as an address in an `AtomicUsize`; the one conversion back to
//! a typed pointer lives here, and it is sound because only [`AtomicFn`]'s
//! own methods write the cell, always from a value of the cell's type `F`.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::idt::TrapFrame;

/// Function pointer types an [`AtomicFn`] can hold.
///
/// # Safety
/// Implement only for function pointer types (`fn(..)`, `extern "C"
/// fn(..)`): pointer-sized, never null, and valid for every bit pattern a
/// value of the type was converted from.
pub unsafe trait FnPtr: Copy + 'static {}

// SAFETY: each of these is a function pointer type.
unsafe impl<R: 'static> FnPtr for extern "C" fn() -> R {}
// SAFETY: as above.
unsafe impl<A: 'static, R: 'static> FnPtr for extern "C" fn(A) -> R {}
// SAFETY: as above.
unsafe impl<A: 'static, B: 'static, R: 'static> FnPtr for extern "C" fn(A, B) -> R {}
// SAFETY: as above (exception hooks, IRQ handlers, the tick hook).
unsafe impl FnPtr for fn(&mut TrapFrame) {}
// SAFETY: as above.
unsafe impl FnPtr for fn(&mut TrapFrame) -> bool {}
// SAFETY: as above (console sinks).
unsafe impl FnPtr for fn(&[u8]) {}
// SAFETY: as above (work run once the console is free).
unsafe impl FnPtr for fn() {}
// SAFETY: as above (the panic hook).
unsafe impl FnPtr for fn(&core::panic::PanicInfo<'_>) {}

/// An optional function pointer of type `F`, read and written atomically
/// (sequentially consistent).
pub struct AtomicFn<F: FnPtr> {
    addr: AtomicUsize,
    _type: PhantomData<F>,
}

fn addr_of<F: FnPtr>(f: Option<F>) -> usize {
    const { assert!(size_of::<F>() == size_of::<usize>()) };
    match f {
        // SAFETY: `F` is a pointer-sized function pointer (`FnPtr`).
        Some(f) => unsafe { core::mem::transmute_copy::<F, usize>(&f) },
        None => 0,
    }
}

fn from_addr<F: FnPtr>(addr: usize) -> Option<F> {
    const { assert!(size_of::<F>() == size_of::<usize>()) };
    match addr {
        0 => None,
        // SAFETY: non-zero values in an `AtomicFn<F>` are only ever written
        // by `addr_of::<F>` from a value of type `F` (function pointers are
        // never null, so 0 means none).
        a => Some(unsafe { core::mem::transmute_copy::<usize, F>(&a) }),
    }
}

impl<F: FnPtr> AtomicFn<F> {
    /// An empty cell.
    pub const fn none() -> Self {
        AtomicFn {
            addr: AtomicUsize::new(0),
            _type: PhantomData,
        }
    }

    /// The function, if one is set.
    pub fn load(&self) -> Option<F> {
        from_addr(self.addr.load(Ordering::SeqCst))
    }

    /// Sets (or with `None` clears) the function.
    pub fn store(&self, f: Option<F>) {
        self.addr.store(addr_of(f), Ordering::SeqCst);
    }

    /// Sets the function and returns the previous one.
    pub fn swap(&self, f: Option<F>) -> Option<F> {
        from_addr(self.addr.swap(addr_of(f), Ordering::SeqCst))
    }

    /// Sets `f` only if the cell is empty; otherwise returns the function
    /// already there.
    pub fn set_if_none(&self, f: F) -> Result<(), F> {
        self.addr
            .compare_exchange(0, addr_of(Some(f)), Ordering::SeqCst, Ordering::SeqCst)
            .map(|_| ())
            .map_err(|a| from_addr(a).expect("compare_exchange fails only on a set cell"))
    }

    /// Whether a function is set.
    pub fn is_some(&self) -> bool {
        self.addr.load(Ordering::SeqCst) != 0
    }
}

impl<F: FnPtr> Default for AtomicFn<F> {
    fn default() -> Self {
        Self::none()
    }
}
