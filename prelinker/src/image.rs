//! Writing output files atomically: a temporary file in the destination's
//! directory, renamed over the destination only once it is complete.

use crate::err;
use crate::error::Result;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically. On error no file is left behind (and
/// `path` is untouched).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
    let r = f
        .write_all(bytes)
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
