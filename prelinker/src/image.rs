//! Writing output files atomically (a temporary file in the destination's
//! directory, renamed over the destination only once it is complete), and
//! writing a prelinked image as the kernel's bytes plus patches.

use crate::err;
use crate::error::Result;
use crate::link::{Patch, Prelinked};
use std::fs::File;
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Creates a temporary file next to `path`, lets `fill` write it, and renames
/// it over `path`. On error no file is left behind (and `path` is untouched).
fn with_temp(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let base = path
        .file_name()
        .ok_or_else(|| err!(Io, "{}: not a file name", path.display()))?
        .to_string_lossy();
    let mut tmp = None;
    for i in 0..100u32 {
        let p = dir.join(format!(".{base}.tmp{}.{i}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => {
                tmp = Some((p, f));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(err!(
                    Io,
                    "{}: cannot create a temporary file: {e}",
                    p.display()
                ));
            }
        }
    }
    let (tmp_path, mut f) =
        tmp.ok_or_else(|| err!(Io, "{}: cannot create a temporary file", dir.display()))?;
    let r = fill(&mut f)
        .and_then(|_| f.flush())
        .map_err(|e| err!(Io, "{}: write failed: {e}", tmp_path.display()))
        .and_then(|_| {
            drop(f);
            std::fs::rename(&tmp_path, path)
                .map_err(|e| err!(Io, "{}: cannot rename into place: {e}", path.display()))
        });
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    r
}

/// An earlier output being freed in the background; dropping it waits.
pub struct Discarded(Option<std::thread::JoinHandle<()>>);

impl Drop for Discarded {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Removes the regular file at `path` (an earlier output), if there is one,
/// and frees its pages on another thread while the caller goes on: the
/// last close of a large file frees every page (milliseconds for an image
/// of tens of MiB), so the file is kept open, unlinked here, and closed on
/// that thread, as lld does. If it cannot be removed, nothing is done (the
/// final rename replaces it).
pub fn discard_old(path: &Path) -> Discarded {
    let is_file = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
    let Some(f) = is_file.then(|| File::open(path).ok()).flatten() else {
        return Discarded(None);
    };
    if std::fs::remove_file(path).is_err() {
        return Discarded(None);
    }
    Discarded(Some(std::thread::spawn(move || drop(f))))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    with_temp(path, |f| f.write_all(bytes))
}

/// Gaps between patches up to this size are written as zeros, so that
/// nearby patches (consecutive module slots) go out in one `writev`.
const MAX_GAP: usize = 16 << 10;
static ZEROS: [u8; MAX_GAP] = [0; MAX_GAP];

/// `write_all` for a list of buffers.
fn write_all_vectored(f: &mut File, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    while !bufs.is_empty() {
        match f.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Groups the non-empty patches, sorted by offset, into runs written with
/// one `writev` each: patches in the same replaced range less than
/// [`MAX_GAP`] apart go together, with zeros between them. Returns, per
/// run, its file range and the indices of its patches in `sorted`.
fn patch_runs(replaced: &[(u64, u64)], sorted: &[&Patch]) -> Vec<((u64, u64), Vec<usize>)> {
    let area = |off: u64| replaced.partition_point(|&(s, _)| s <= off);
    let mut runs = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i].file_off;
        let mut end = start + sorted[i].bytes.len() as u64;
        let mut members = vec![i];
        i += 1;
        while let Some(next) = sorted.get(i) {
            match next.file_off.checked_sub(end) {
                Some(g) if g as usize <= MAX_GAP && area(next.file_off) == area(start) => {
                    end = next.file_off + next.bytes.len() as u64;
                    members.push(i);
                    i += 1;
                }
                _ => break,
            }
        }
        runs.push(((start, end), members));
    }
    runs
}

fn sorted_patches(patches: &[Patch]) -> Vec<&Patch> {
    let mut sorted: Vec<&Patch> = patches.iter().filter(|p| !p.bytes.is_empty()).collect();
    sorted.sort_by_key(|p| p.file_off);
    sorted
}

/// Writes the patches, which lie inside the sorted, disjoint `replaced`
/// ranges (zero in the image except where a patch writes), run by run
/// ([`patch_runs`]).
fn write_patches(f: &mut File, replaced: &[(u64, u64)], patches: &[Patch]) -> std::io::Result<()> {
    let sorted = sorted_patches(patches);
    for ((start, _), members) in patch_runs(replaced, &sorted) {
        let mut bufs = Vec::with_capacity(2 * members.len());
        let mut end = start;
        for &m in &members {
            let p = sorted[m];
            let gap = (p.file_off - end) as usize;
            if gap > 0 {
                bufs.push(IoSlice::new(&ZEROS[..gap]));
            }
            bufs.push(IoSlice::new(&p.bytes));
            end = p.file_off + p.bytes.len() as u64;
        }
        f.seek(SeekFrom::Start(start))?;
        write_all_vectored(f, &mut bufs)?;
    }
    Ok(())
}

/// The file ranges [`write_image`] writes for `p` into an image of
/// `kernel_len` bytes, in the order it writes them: the kernel's bytes
/// outside the replaced areas, then the runs of patches. For measuring the
/// I/O a link cannot avoid.
pub fn written_ranges(kernel_len: u64, p: &Prelinked) -> Vec<(u64, u64)> {
    let mut out = kernel_runs(kernel_len, &p.replaced);
    let sorted = sorted_patches(&p.patches);
    out.extend(patch_runs(&p.replaced, &sorted).into_iter().map(|r| r.0));
    out
}

/// The kernel's byte ranges outside the sorted, disjoint `replaced` areas.
fn kernel_runs(kernel_len: u64, replaced: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0u64;
    for &(s, e) in replaced.iter().chain([&(kernel_len, kernel_len)]) {
        if s > at {
            out.push((at, s));
        }
        at = at.max(e);
    }
    out
}

/// Writes the prelinked image to `path` atomically: the kernel's bytes
/// outside the replaced areas, then the patches. The replaced areas are left
/// as holes where nothing is written (they read as zeros), so the unused
/// tails of the regions cost no I/O.
pub fn write_image(path: &Path, kernel: &[u8], p: &Prelinked) -> Result<()> {
    with_temp(path, |f| {
        f.set_len(kernel.len() as u64)?;
        for (s, e) in kernel_runs(kernel.len() as u64, &p.replaced) {
            f.write_all_at(&kernel[s as usize..e as usize], s)?;
        }
        write_patches(f, &p.replaced, &p.patches)
    })
}
