//! Writing output files atomically (a temporary file in the destination's
//! directory, renamed over the destination only once it is complete), and
//! writing a prelinked image as the kernel's bytes plus patches.

use crate::err;
use crate::error::Result;
use crate::link::Prelinked;
use std::fs::File;
use std::io::Write;
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

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    with_temp(path, |f| f.write_all(bytes))
}

/// Writes the prelinked image to `path` atomically: the kernel's bytes
/// outside the replaced areas, then the patches. The replaced areas are left
/// as holes where nothing is written (they read as zeros), so the unused
/// tails of the 2 MiB regions cost no I/O.
pub fn write_image(path: &Path, kernel: &[u8], p: &Prelinked) -> Result<()> {
    with_temp(path, |f| {
        f.set_len(kernel.len() as u64)?;
        let mut at = 0u64;
        for &(s, e) in p
            .replaced
            .iter()
            .chain([&(kernel.len() as u64, kernel.len() as u64)])
        {
            if s > at {
                f.write_all_at(&kernel[at as usize..s as usize], at)?;
            }
            at = at.max(e);
        }
        for patch in &p.patches {
            f.write_all_at(&patch.bytes, patch.file_off)?;
        }
        Ok(())
    })
}
