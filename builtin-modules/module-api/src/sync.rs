//! A write-once cell for `static` driver state (console and IRQ handlers
//! have no other place to find their device).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

/// A value set at most once, then shared read-only.
pub struct OnceCell<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once by the thread that won the EMPTY ->
// WRITING transition and only read (shared) after READY is published with
// Release/Acquire ordering; so sharing needs `T: Sync` and moving the value
// in from another thread needs `T: Send`.
unsafe impl<T: Send + Sync> Sync for OnceCell<T> {}

impl<T> OnceCell<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        OnceCell {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `value` unless the cell is already set (then returns it back).
    pub fn set(&self, value: T) -> Result<(), T> {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: winning the EMPTY -> WRITING exchange gives exclusive
        // access; no reader looks at the value before READY.
        unsafe { (*self.value.get()).write(value) };
        self.state.store(READY, Ordering::Release);
        Ok(())
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) == READY {
            // SAFETY: READY is stored only after the value was initialised,
            // and it is never written again.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for OnceCell<T> {
    fn drop(&mut self) {
        if *self.state.get_mut() == READY {
            // SAFETY: READY means initialised; `&mut self` means no readers.
            unsafe { self.value.get_mut().assume_init_drop() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_once() {
        let c = OnceCell::new();
        assert_eq!(c.get(), None);
        assert_eq!(c.set(String::from("a")), Ok(()));
        assert_eq!(c.set(String::from("b")), Err(String::from("b")));
        assert_eq!(c.get().map(String::as_str), Some("a"));
    }
}
