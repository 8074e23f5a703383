//! Packing cursors: where the next kept module's class goes.

use crate::{PACK_ALIGN, align_up};
use modtable::{Class, PerClass};

/// One cursor per class region; everything below a cursor is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursors {
    next: PerClass<u64>,
}

impl Cursors {
    /// Cursors at the start of each region.
    pub fn new(region_base: PerClass<u64>) -> Cursors {
        Cursors { next: region_base }
    }

    /// Where a class of `size` bytes needing `align` would be placed: the
    /// cursor rounded up to `max(align, 64)`. An empty class is placed at the
    /// cursor itself.
    pub fn place(&self, class: Class, size: u64, align: u64) -> u64 {
        if size == 0 {
            self.next[class]
        } else {
            align_up(self.next[class], align.max(PACK_ALIGN))
        }
    }

    /// Marks a class placed at `addr` with `size` bytes as kept.
    pub fn commit(&mut self, class: Class, addr: u64, size: u64) {
        debug_assert!(addr >= self.next[class]);
        if size > 0 {
            self.next[class] = addr + size;
        }
    }

    /// The current cursor of a class (end of live bytes).
    pub fn get(&self, class: Class) -> u64 {
        self.next[class]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_at_cache_lines_and_respects_larger_alignment() {
        let mut c = Cursors::new(PerClass([0x1000, 0x2000, 0x3000]));
        let a = c.place(Class::Text, 100, 16);
        assert_eq!(a, 0x1000);
        c.commit(Class::Text, a, 100);
        let b = c.place(Class::Text, 10, 1);
        assert_eq!(b, 0x1000 + 128);
        c.commit(Class::Text, b, 10);
        // A class needing 4 KiB alignment is not packed tighter than that.
        assert_eq!(c.place(Class::Text, 10, 4096), 0x2000);
        // Empty classes take no room and do not move the cursor.
        assert_eq!(c.place(Class::Rodata, 0, 8), 0x2000);
        c.commit(Class::Rodata, 0x2000, 0);
        assert_eq!(c.get(Class::Rodata), 0x2000);
        assert_eq!(c.get(Class::Data), 0x3000);
    }
}
