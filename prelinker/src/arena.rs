//! The class bytes of many modules in a few large anonymous mappings
//! ("chunks"), handed out by offset, instead of three heap buffers per
//! module: the allocator then neither grows its heap page by page for them
//! nor takes a page fault per 4 KiB when they are first written, since the
//! chunks are advised to use transparent huge pages where the system allows
//! it. Each worker thread fills chunks of its own through an [`Arena`];
//! full chunks go to the [`Chunks`] the link shares, which hands them back
//! (in the order they were started) once every module is prepared.

use crate::err;
use crate::error::Result;
use memmap2::{Advice, MmapMut};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Size of a chunk (a larger module gets a chunk of its own): large enough
/// to be made of whole huge pages, small enough that the part of a
/// thread's last chunk left unused costs little.
pub const CHUNK_SIZE: usize = 4 << 20;

/// Size of a thread's first chunk, which gets no huge-page advice: a huge
/// page is zeroed whole when first written, so for a small link (a few
/// dozen modules) small pages cost less (only those written are zeroed).
pub const FIRST_CHUNK_SIZE: usize = 512 << 10;

/// Where some bytes are: chunk `chunk` (see [`Chunks::into_maps`]) from
/// byte `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// The chunk's number.
    pub chunk: usize,
    /// The offset in it.
    pub off: usize,
}

/// The chunks of one link, shared by its worker threads.
#[derive(Default)]
pub struct Chunks {
    /// Number of the next chunk.
    next: AtomicUsize,
    /// The chunks handed back, with their numbers.
    done: Mutex<Vec<(usize, MmapMut)>>,
}

impl Chunks {
    /// A writer for one thread.
    pub fn arena(&self) -> Arena<'_> {
        Arena {
            chunks: self,
            current: None,
            used: 0,
            made: 0,
        }
    }

    /// The chunks, indexed by [`Loc::chunk`], once every [`Arena`] is
    /// dropped.
    pub fn into_maps(self) -> Vec<MmapMut> {
        let mut done = self.done.into_inner().expect("a worker panicked");
        done.sort_unstable_by_key(|c| c.0);
        debug_assert!(done.iter().enumerate().all(|(i, c)| c.0 == i));
        done.into_iter().map(|c| c.1).collect()
    }
}

/// One thread's writer into the chunks of a [`Chunks`]; hands its last
/// chunk back when dropped.
pub struct Arena<'c> {
    chunks: &'c Chunks,
    /// The chunk being filled, with its number.
    current: Option<(usize, MmapMut)>,
    /// Bytes of it handed out.
    used: usize,
    /// Chunks this arena has made.
    made: usize,
}

impl Arena<'_> {
    /// `len` zero bytes, 64-byte aligned, and where they are.
    pub fn alloc(&mut self, len: usize) -> Result<(Loc, &mut [u8])> {
        let start = self.used.next_multiple_of(64);
        let fits = self
            .current
            .as_ref()
            .is_some_and(|(_, m)| start.checked_add(len).is_some_and(|e| e <= m.len()));
        let start = if fits {
            start
        } else {
            let first = self.made == 0 && len <= FIRST_CHUNK_SIZE;
            let size = if first {
                FIRST_CHUNK_SIZE
            } else {
                len.max(CHUNK_SIZE).next_multiple_of(CHUNK_SIZE)
            };
            let map = MmapMut::map_anon(size).map_err(|e| {
                err!(
                    Io,
                    "cannot allocate {size} bytes for the modules' class bytes: {e}"
                )
            })?;
            self.made += 1;
            // Only advice: without huge pages the chunk works the same.
            if !first {
                let _ = map.advise(Advice::HugePage);
            }
            let id = self.chunks.next.fetch_add(1, Ordering::Relaxed);
            self.hand_back();
            self.current = Some((id, map));
            0
        };
        self.used = start + len;
        let (id, map) = self.current.as_mut().expect("a chunk was just made");
        Ok((
            Loc {
                chunk: *id,
                off: start,
            },
            &mut map[start..start + len],
        ))
    }

    /// Shortens the allocation at `loc`, the latest, to `len` bytes: the
    /// rest goes to the next allocation.
    pub fn trim_last(&mut self, loc: Loc, len: usize) {
        let current = self.current.as_ref().map(|c| c.0);
        assert_eq!(current, Some(loc.chunk), "not the latest allocation");
        assert!(loc.off + len <= self.used, "trimming cannot grow");
        self.used = loc.off + len;
    }

    fn hand_back(&mut self) {
        if let Some(c) = self.current.take() {
            self.chunks.done.lock().expect("a worker panicked").push(c);
        }
    }
}

impl Drop for Arena<'_> {
    fn drop(&mut self) {
        self.hand_back();
    }
}

/// Splits `maps` into the disjoint byte ranges `(loc, len)` of `ranges`
/// (which must not overlap): the result has one slice per range, in the
/// order of `ranges`.
pub fn split<'m>(maps: &'m mut [MmapMut], ranges: &[(Loc, usize)]) -> Vec<&'m mut [u8]> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_unstable_by_key(|&i| (ranges[i].0.chunk, ranges[i].0.off));
    let mut out: Vec<Option<&'m mut [u8]>> = (0..ranges.len()).map(|_| None).collect();
    let mut rests: Vec<(usize, &'m mut [u8])> = maps.iter_mut().map(|m| (0, &mut m[..])).collect();
    for i in order {
        let (loc, len) = ranges[i];
        let (at, rest) = &mut rests[loc.chunk];
        let r = std::mem::take(rest);
        let (_, r) = r.split_at_mut(loc.off - *at);
        let (mine, r) = r.split_at_mut(len);
        *at = loc.off + len;
        *rest = r;
        out[i] = Some(mine);
    }
    out.into_iter()
        .map(|s| s.expect("every range split"))
        .collect()
}
