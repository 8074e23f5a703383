//! Reading x86_64 4-level page tables, as pure logic that builds and is
//! tested on the host.
//!
//! The kernel gives [`walk`] a way to read physical memory ([`PhysRead`]) and
//! the root table; everything else is arithmetic on the entries:
//!
//! - [`walk`] lists every leaf mapping with its effective permissions (the
//!   W bit and the NX bit of every level taken into account);
//! - [`stats`] counts leaves by size, tables, and W+X leaves;
//! - [`alias_frames`] counts physical frames that are writable through one
//!   mapping and executable or read-only through another: the direct-map
//!   aliases that W^X forbids;
//! - [`count_mappings`] counts the 4 KiB and 2 MiB leaves over a virtual range.

#![no_std]

extern crate alloc;

use alloc::vec::Vec;

/// Entry bit: present.
pub const PTE_PRESENT: u64 = 1 << 0;
/// Entry bit: writable.
pub const PTE_WRITABLE: u64 = 1 << 1;
/// Entry bit: leaf at level 2 or 3 (2 MiB or 1 GiB page).
pub const PTE_HUGE: u64 = 1 << 7;
/// Entry bit: not executable.
pub const PTE_NX: u64 = 1 << 63;
/// Physical address bits of an entry.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Size of a small page.
pub const PAGE_4K: u64 = 4096;
/// Size of a huge page.
pub const PAGE_2M: u64 = 2 << 20;
/// Size of a giant page.
pub const PAGE_1G: u64 = 1 << 30;

/// Read access to the physical memory that holds the page tables.
pub trait PhysRead {
    /// The 64-bit word at physical address `phys` (8-byte aligned).
    fn read_u64(&self, phys: u64) -> u64;
}

/// One leaf mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// First virtual address (canonical).
    pub virt: u64,
    /// First physical address.
    pub phys: u64,
    /// Bytes mapped: [`PAGE_4K`], [`PAGE_2M`] or [`PAGE_1G`].
    pub size: u64,
    /// Writable through every level.
    pub writable: bool,
    /// Executable through every level.
    pub executable: bool,
}

/// Sign-extends a 48-bit virtual address.
const fn canonical(v: u64) -> u64 {
    if v & (1 << 47) != 0 {
        v | 0xffff_0000_0000_0000
    } else {
        v
    }
}

/// Bytes covered by one entry of a table of `level` (4 = PML4 .. 1 = PT).
const fn granule(level: u32) -> u64 {
    1 << (12 + 9 * (level - 1))
}

/// Calls `f` on every leaf under `root`, in virtual address order.
pub fn for_each_leaf(mem: &impl PhysRead, root: u64, mut f: impl FnMut(Leaf)) {
    visit(mem, root, 4, 0, true, true, &mut |l| f(l), &mut |_| {});
}

#[allow(clippy::too_many_arguments)]
fn visit(
    mem: &impl PhysRead,
    table: u64,
    level: u32,
    base: u64,
    writable: bool,
    exec: bool,
    leaf: &mut dyn FnMut(Leaf),
    on_table: &mut dyn FnMut(u64),
) {
    on_table(table);
    for i in 0..512u64 {
        let v = mem.read_u64(table + i * 8);
        if v & PTE_PRESENT == 0 {
            continue;
        }
        let w = writable && v & PTE_WRITABLE != 0;
        let x = exec && v & PTE_NX == 0;
        let virt = base + i * granule(level);
        let is_leaf = level == 1 || (level <= 3 && v & PTE_HUGE != 0);
        if is_leaf {
            let size = granule(level);
            leaf(Leaf {
                virt: canonical(virt),
                phys: v & ADDR_MASK & !(size - 1),
                size,
                writable: w,
                executable: x,
            });
        } else {
            visit(mem, v & ADDR_MASK, level - 1, virt, w, x, leaf, on_table);
        }
    }
}

/// Every leaf under `root`, in virtual address order.
pub fn walk(mem: &impl PhysRead, root: u64) -> Vec<Leaf> {
    let mut v = Vec::new();
    for_each_leaf(mem, root, |l| v.push(l));
    v
}

/// Leaf and table counts of a whole tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// 4 KiB leaf mappings.
    pub pages_4k: usize,
    /// 2 MiB leaf mappings.
    pub pages_2m: usize,
    /// 1 GiB leaf mappings.
    pub pages_1g: usize,
    /// Page-table frames (including the root).
    pub tables: usize,
    /// Leaves that are writable and executable through all levels.
    pub wx: usize,
}

/// Counts the leaves and tables under `root`.
pub fn stats(mem: &impl PhysRead, root: u64) -> Stats {
    let mut s = Stats::default();
    let mut tables = 0;
    visit(
        mem,
        root,
        4,
        0,
        true,
        true,
        &mut |l: Leaf| {
            match l.size {
                PAGE_4K => s.pages_4k += 1,
                PAGE_2M => s.pages_2m += 1,
                _ => s.pages_1g += 1,
            }
            if l.writable && l.executable {
                s.wx += 1;
            }
        },
        &mut |_| tables += 1,
    );
    s.tables = tables;
    s
}

/// Number of 4 KiB physical frames that some mapping makes writable while
/// another mapping makes them executable or read-only. A frame mapped only
/// once, even W+X, is not an alias ([`Stats::wx`] counts that).
pub fn alias_frames(leaves: &[Leaf]) -> u64 {
    // Sweep over physical addresses: +1 / -1 events per mapping kind.
    #[derive(Clone, Copy)]
    struct Ev {
        at: u64,
        w: i32,
        rx: i32,
        wx: i32,
    }
    let mut ev: Vec<Ev> = Vec::with_capacity(leaves.len() * 2);
    for l in leaves {
        let w = l.writable as i32;
        let rx = (l.executable || !l.writable) as i32;
        let wx = (l.writable && l.executable) as i32;
        ev.push(Ev {
            at: l.phys,
            w,
            rx,
            wx,
        });
        ev.push(Ev {
            at: l.phys + l.size,
            w: -w,
            rx: -rx,
            wx: -wx,
        });
    }
    ev.sort_unstable_by_key(|e| e.at);
    let (mut w, mut rx, mut wx) = (0i32, 0i32, 0i32);
    let mut frames = 0;
    let mut i = 0;
    while i < ev.len() {
        let at = ev[i].at;
        while i < ev.len() && ev[i].at == at {
            w += ev[i].w;
            rx += ev[i].rx;
            wx += ev[i].wx;
            i += 1;
        }
        let Some(next) = ev.get(i).map(|e| e.at) else {
            break;
        };
        // One W+X mapping alone counts as both kinds; it takes two mappings
        // to make an alias.
        let alone = w == 1 && rx == 1 && wx == 1;
        if w > 0 && rx > 0 && !alone {
            frames += (next - at) / PAGE_4K;
        }
    }
    frames
}

/// Number of 4 KiB and 2 MiB leaves that overlap `[virt, virt + len)`.
pub fn count_mappings(leaves: &[Leaf], virt: u64, len: u64) -> (usize, usize) {
    let end = virt.saturating_add(len);
    leaves
        .iter()
        .filter(|l| l.virt < end && l.virt.wrapping_add(l.size) > virt)
        .fold((0, 0), |(a, b), l| match l.size {
            PAGE_4K => (a + 1, b),
            PAGE_2M => (a, b + 1),
            _ => (a, b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec;

    /// Page tables in a map from physical address to table.
    #[derive(Default)]
    struct Mem {
        tables: BTreeMap<u64, [u64; 512]>,
        next: u64,
    }

    impl PhysRead for Mem {
        fn read_u64(&self, phys: u64) -> u64 {
            let t = phys & !0xfff;
            self.tables
                .get(&t)
                .map_or(0, |t| t[((phys & 0xfff) / 8) as usize])
        }
    }

    const W: u64 = PTE_WRITABLE;
    const NX: u64 = PTE_NX;

    impl Mem {
        fn new() -> (Mem, u64) {
            let mut m = Mem {
                next: 0x10_0000,
                ..Mem::default()
            };
            let root = m.table();
            (m, root)
        }

        fn table(&mut self) -> u64 {
            let p = self.next;
            self.next += PAGE_4K;
            self.tables.insert(p, [0; 512]);
            p
        }

        /// The table at `level` for `virt`, creating tables (RW, executable)
        /// on the way.
        fn table_for(&mut self, root: u64, virt: u64, level: u32) -> u64 {
            let mut t = root;
            for l in ((level + 1)..=4).rev() {
                let idx = ((virt >> (12 + 9 * (l - 1))) & 511) as usize;
                let e = self.tables[&t][idx];
                t = if e & PTE_PRESENT != 0 {
                    e & ADDR_MASK
                } else {
                    let n = self.table();
                    self.tables.get_mut(&t).unwrap()[idx] = n | PTE_PRESENT | W;
                    n
                };
            }
            t
        }

        fn map(&mut self, root: u64, virt: u64, phys: u64, size: u64, flags: u64) {
            let level = match size {
                PAGE_4K => 1,
                PAGE_2M => 2,
                _ => 3,
            };
            let t = self.table_for(root, virt, level);
            let idx = ((virt >> (12 + 9 * (level - 1))) & 511) as usize;
            let huge = if level > 1 { PTE_HUGE } else { 0 };
            self.tables.get_mut(&t).unwrap()[idx] = phys | PTE_PRESENT | huge | flags;
        }
    }

    const IMAGE: u64 = 0xffff_ffff_8020_0000;
    const DIRECT: u64 = 0xffff_8000_0000_0000;

    #[test]
    fn leaves_carry_effective_permissions_and_sizes() {
        let (mut m, root) = Mem::new();
        m.map(root, IMAGE, 0x20_0000, PAGE_2M, 0); // RX
        m.map(root, IMAGE + PAGE_2M, 0x40_0000, PAGE_4K, NX); // R
        m.map(root, DIRECT, 0, PAGE_1G, W | NX); // RW
        let l = walk(&m, root);
        assert_eq!(l.len(), 3);
        assert_eq!(
            l[0],
            Leaf {
                virt: DIRECT,
                phys: 0,
                size: PAGE_1G,
                writable: true,
                executable: false
            }
        );
        assert_eq!(
            (l[1].virt, l[1].size, l[1].executable),
            (IMAGE, PAGE_2M, true)
        );
        assert_eq!(
            (l[2].size, l[2].writable, l[2].executable),
            (PAGE_4K, false, false)
        );
        let s = stats(&m, root);
        assert_eq!((s.pages_4k, s.pages_2m, s.pages_1g, s.wx), (1, 1, 1, 0));
        // PML4, two PDPTs, one PD for the image, one PT.
        assert_eq!(s.tables, 5);
        assert_eq!(count_mappings(&l, IMAGE, PAGE_2M + 1), (1, 1));
        assert_eq!(count_mappings(&l, IMAGE + PAGE_4K, 1), (0, 1));
    }

    #[test]
    fn wx_leaves_are_counted_through_all_levels() {
        let (mut m, root) = Mem::new();
        m.map(root, IMAGE, 0x20_0000, PAGE_2M, W); // W and executable
        m.map(root, IMAGE + PAGE_2M, 0x40_0000, PAGE_4K, W | NX);
        assert_eq!(stats(&m, root).wx, 1);
        // A read-only upper level makes the leaf read-only: no longer W+X.
        let pdpt = m.tables[&root][511] & ADDR_MASK;
        let pd = m.tables[&pdpt][510] & ADDR_MASK;
        m.tables.get_mut(&pdpt).unwrap()[510] = pd | PTE_PRESENT;
        assert_eq!(stats(&m, root).wx, 0);
        // So does NX on an upper level.
        m.tables.get_mut(&pdpt).unwrap()[510] = pd | PTE_PRESENT | W | NX;
        assert_eq!(stats(&m, root).wx, 0);
    }

    #[test]
    fn writable_direct_map_alias_of_text_is_found() {
        let (mut m, root) = Mem::new();
        // Text RX at 2 MiB, rodata R at 4 MiB, data RW at 6 MiB.
        m.map(root, IMAGE, 0x20_0000, PAGE_2M, 0);
        m.map(root, IMAGE + PAGE_2M, 0x40_0000, PAGE_2M, NX);
        m.map(root, IMAGE + 2 * PAGE_2M, 0x60_0000, PAGE_2M, W | NX);
        // A direct map of 0..8 MiB, writable everywhere: text and rodata
        // frames are aliased.
        for i in 0..4 {
            m.map(root, DIRECT + i * PAGE_2M, i * PAGE_2M, PAGE_2M, W | NX);
        }
        let frames_2m = PAGE_2M / PAGE_4K;
        assert_eq!(alias_frames(&walk(&m, root)), 2 * frames_2m);
        // Read-only direct map over text and rodata: no alias.
        for i in 1..3 {
            m.map(root, DIRECT + i * PAGE_2M, i * PAGE_2M, PAGE_2M, NX);
        }
        assert_eq!(alias_frames(&walk(&m, root)), 0);
        // A temporary writable 4 KiB window onto one text frame is one alias.
        m.map(root, 0xffff_d000_0000_0000, 0x20_3000, PAGE_4K, W | NX);
        assert_eq!(alias_frames(&walk(&m, root)), 1);
    }

    #[test]
    fn one_wx_mapping_alone_is_not_an_alias() {
        let l = vec![Leaf {
            virt: IMAGE,
            phys: 0x20_0000,
            size: PAGE_4K,
            writable: true,
            executable: true,
        }];
        assert_eq!(alias_frames(&l), 0);
        let mut two = l.clone();
        two.push(Leaf {
            virt: DIRECT,
            phys: 0x20_0000,
            size: PAGE_4K,
            writable: false,
            executable: false,
        });
        assert_eq!(alias_frames(&two), 1);
    }
}
