//! Writing output files atomically (a temporary file in the destination's
//! directory, renamed over the destination only once it is complete; on
//! failure only the temporary file is removed), writing a prelinked image as
//! the kernel's bytes plus patches (the modules' patches written by the
//! link itself while it relocates, through a [`ModuleSink`], when staged
//! with [`stage_image_streamed`]), and refusing outputs that would
//! overwrite an input ([`check_outputs`]).

use crate::err;
use crate::error::Result;
use crate::link::Prelinked;
use std::fs::File;
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// An output written to a temporary file in its destination's directory,
/// not yet in place: [`Staged::commit`] renames it over the destination;
/// dropping it uncommitted removes the temporary file (and only that: the
/// destination, if it exists, is never touched).
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl Staged {
    /// Creates a temporary file next to `path` and lets `fill` write it.
    fn new(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<Staged> {
        let (staged, mut f) = Staged::create(path)?;
        fill(&mut f)
            .and_then(|_| f.flush())
            .map_err(|e| staged.write_failed(e))?;
        Ok(staged)
    }

    /// The error for a failed write of the temporary file.
    fn write_failed(&self, e: std::io::Error) -> crate::Error {
        err!(Io, "{}: write failed: {e}", self.tmp.display())
    }

    /// Creates an empty temporary file next to `path`, removed again if the
    /// result is dropped uncommitted.
    fn create(given: &Path) -> Result<(Staged, File)> {
        let target = output_target(given)?;
        let path = target.as_path();
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
                        "{}: cannot write the output: creating its temporary file {} failed: {e}",
                        given.display(),
                        p.display()
                    ));
                }
            }
        }
        let (tmp, f) = tmp.ok_or_else(|| {
            err!(
                Io,
                "{}: cannot write the output: no free temporary file name in {}",
                given.display(),
                dir.display()
            )
        })?;
        // From here on, dropping the result removes the temporary file.
        let staged = Staged {
            tmp,
            dest: path.to_path_buf(),
            done: false,
        };
        Ok((staged, f))
    }

    /// Renames the temporary file over the destination.
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.dest)
            .map_err(|e| err!(Io, "{}: cannot rename into place: {e}", self.dest.display()))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// An earlier output, kept open while its replacement is written.
pub struct OldOutput(Option<File>);

/// An earlier output being closed on another thread; dropping it waits.
pub struct Closing(Option<std::thread::JoinHandle<()>>);

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Opens the regular file at `path` (an earlier output), if there is one,
/// without changing it. Once the new output has been renamed over it,
/// [`OldOutput::close_in_background`] closes it on another thread: the last
/// close of a replaced file frees every page it had (milliseconds for an
/// image of tens of MiB), which then need not hold up the caller. If the
/// link fails the old file stays exactly as it was.
pub fn hold_old_output(path: &Path) -> OldOutput {
    let Ok(path) = output_target(path) else {
        return OldOutput(None);
    };
    let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    OldOutput(is_file.then(|| File::open(&path).ok()).flatten())
}

/// The file an output path names: the path itself, or, if it is a
/// symbolic link, the file the link points at, which is then written in
/// place (the link stays a link, as with a shell's `>`).
fn output_target(path: &Path) -> Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| {
            err!(
                Usage,
                "{}: a symbolic link to nothing that exists ({e}); nothing was written",
                path.display()
            )
        }),
        _ => Ok(path.to_path_buf()),
    }
}

impl OldOutput {
    /// Closes the old file on another thread (call once it has been
    /// replaced).
    pub fn close_in_background(mut self) -> Closing {
        Closing(self.0.take().map(|f| std::thread::spawn(move || drop(f))))
    }
}

/// Writes `bytes` to a temporary file next to `path`, to be renamed over it
/// by [`Staged::commit`].
pub fn stage(path: &Path, bytes: &[u8]) -> Result<Staged> {
    Staged::new(path, |f| f.write_all(bytes))
}

/// Writes `bytes` to `path` atomically: an existing file at `path` is
/// replaced only once the new contents are complete, and left as it was if
/// writing them fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    stage(path, bytes)?.commit()
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
fn patch_runs(replaced: &[(u64, u64)], sorted: &[(u64, &[u8])]) -> Vec<((u64, u64), Vec<usize>)> {
    let area = |off: u64| replaced.partition_point(|&(s, _)| s <= off);
    let mut runs = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i].0;
        let mut end = start + sorted[i].1.len() as u64;
        let mut members = vec![i];
        i += 1;
        while let Some(&(next_off, next_bytes)) = sorted.get(i) {
            match next_off.checked_sub(end) {
                Some(g) if g as usize <= MAX_GAP && area(next_off) == area(start) => {
                    end = next_off + next_bytes.len() as u64;
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

/// The non-empty patches of `p`, as `(file offset, bytes)`, sorted by
/// offset: all of them, or only those not yet written by the link
/// ([`crate::link::Patch::streamed`]).
fn sorted_patches(p: &Prelinked, with_streamed: bool) -> Vec<(u64, &[u8])> {
    let mut sorted: Vec<(u64, &[u8])> = p
        .patches
        .iter()
        .filter(|x| with_streamed || !x.streamed)
        .map(|x| (x.file_off, p.bytes(x)))
        .filter(|x| !x.1.is_empty())
        .collect();
    sorted.sort_by_key(|x| x.0);
    sorted
}

/// Writes the patches not yet written, which lie inside the sorted,
/// disjoint `replaced` ranges (zero in the image except where a patch
/// writes), run by run ([`patch_runs`]).
fn write_patches(f: &mut File, p: &Prelinked) -> std::io::Result<()> {
    write_sorted(f, &p.replaced, &sorted_patches(p, false))
}

/// Writes `sorted` (`(file offset, bytes)` in offset order, inside the
/// sorted, disjoint `replaced` ranges) run by run ([`patch_runs`]).
fn write_sorted(
    f: &mut File,
    replaced: &[(u64, u64)],
    sorted: &[(u64, &[u8])],
) -> std::io::Result<()> {
    for ((start, _), members) in patch_runs(replaced, sorted) {
        let mut bufs = Vec::with_capacity(2 * members.len());
        let mut end = start;
        for &m in &members {
            let (off, bytes) = sorted[m];
            let gap = (off - end) as usize;
            if gap > 0 {
                bufs.push(IoSlice::new(&ZEROS[..gap]));
            }
            bufs.push(IoSlice::new(bytes));
            end = off + bytes.len() as u64;
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
    let sorted = sorted_patches(p, true);
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

/// Writes the prelinked image to `path` atomically (see [`stage_image`]).
pub fn write_image(path: &Path, kernel: &[u8], p: &Prelinked) -> Result<()> {
    stage_image(path, kernel, p)?.commit()
}

/// Writes the prelinked image to a temporary file next to `path`, to be
/// renamed over it by [`Staged::commit`]: the kernel's bytes outside the
/// replaced areas, then the patches. The replaced areas are left as holes
/// where nothing is written (they read as zeros), so the unused tails of the
/// regions cost no I/O.
pub fn stage_image(path: &Path, kernel: &[u8], p: &Prelinked) -> Result<Staged> {
    Staged::new(path, |f| {
        f.set_len(kernel.len() as u64)?;
        write_kernel_and_patches(f, kernel, p)
    })
}

/// Writes what the image keeps of `kernel` (all but the `replaced` ranges)
/// and `p`'s patches: everything of the image but the modules' bytes.
fn write_kernel_and_patches(f: &mut File, kernel: &[u8], p: &Prelinked) -> std::io::Result<()> {
    write_kernel(f, kernel, &p.replaced)?;
    write_patches(f, p)
}

/// Writes what the image keeps of `kernel`: all but the sorted, disjoint
/// `replaced` ranges.
fn write_kernel(f: &mut File, kernel: &[u8], replaced: &[(u64, u64)]) -> std::io::Result<()> {
    for (s, e) in kernel_runs(kernel.len() as u64, replaced) {
        f.write_all_at(&kernel[s as usize..e as usize], s)?;
    }
    Ok(())
}

/// The image file a link writes the modules' bytes into while it
/// relocates them (see [`stage_image_streamed`]), batch by batch from its
/// worker threads, and the kernel's own bytes with the first batch (so
/// that they too are written while other workers relocate, not after the
/// link). The first write error is kept and reported when the link is
/// done.
pub struct ModuleSink<'k> {
    file: std::sync::Mutex<SinkFile>,
    /// The kernel whose bytes outside the replaced areas the image keeps.
    kernel: &'k [u8],
}

/// The file a [`ModuleSink`] writes, whether the kernel's bytes are in it
/// yet, and the first write error.
struct SinkFile {
    file: File,
    kernel_written: bool,
    error: Option<std::io::Error>,
}

/// Batches of `(file offset, bytes)` left for a later write by
/// [`ModuleSink::write`].
pub(crate) type Waiting<'b> = std::sync::Mutex<Vec<Vec<(u64, &'b [u8])>>>;

impl<'k> ModuleSink<'k> {
    /// A sink writing into `file` (of the image's length), which keeps the
    /// bytes of `kernel` outside the replaced areas.
    fn new(file: File, kernel: &'k [u8]) -> ModuleSink<'k> {
        ModuleSink {
            file: std::sync::Mutex::new(SinkFile {
                file,
                kernel_written: false,
                error: None,
            }),
            kernel,
        }
    }

    /// Writes `batch` (`(file offset, bytes)` of modules in consecutive
    /// slots, inside the sorted, disjoint `replaced` ranges) and the batches
    /// `waiting`, run by run, if no other thread is writing; otherwise
    /// leaves `batch` waiting for the next write (a worker never waits for
    /// another's write). Batches are written one by one: only the gaps
    /// inside one (slot padding) are written as zeros, never the slots
    /// between two batches, which another batch may already have written.
    pub(crate) fn write<'b>(
        &self,
        replaced: &[(u64, u64)],
        waiting: &Waiting<'b>,
        batch: Vec<(u64, &'b [u8])>,
    ) {
        match self.file.try_lock() {
            Ok(mut g) => {
                let mut all = std::mem::take(&mut *waiting.lock().expect("a writer panicked"));
                all.push(batch);
                self.write_batches(&mut g, replaced, all);
            }
            Err(_) => waiting.lock().expect("a writer panicked").push(batch),
        }
    }

    /// Writes the batches still waiting (once every worker is done).
    pub(crate) fn flush(&self, replaced: &[(u64, u64)], waiting: Waiting<'_>) {
        let all = waiting.into_inner().expect("a writer panicked");
        self.write_batches(
            &mut self.file.lock().expect("a writer panicked"),
            replaced,
            all,
        );
    }

    /// Writes the kernel's bytes, if not yet written, then `batches`.
    fn write_batches(
        &self,
        g: &mut SinkFile,
        replaced: &[(u64, u64)],
        batches: Vec<Vec<(u64, &[u8])>>,
    ) {
        if !g.kernel_written && g.error.is_none() {
            g.kernel_written = true;
            if let Err(e) = write_kernel(&mut g.file, self.kernel, replaced) {
                g.error = Some(e);
            }
        }
        for mut b in batches {
            b.sort_unstable_by_key(|p| p.0);
            if g.error.is_none()
                && let Err(e) = write_sorted(&mut g.file, replaced, &b)
            {
                g.error = Some(e);
            }
        }
    }

    /// The file, with the kernel's bytes in it (written now if no batch
    /// was, `replaced` being the ranges they exclude), or the first error
    /// writing it.
    fn into_file(self, replaced: &[(u64, u64)]) -> std::io::Result<File> {
        self.write_batches(
            &mut self.file.lock().expect("a writer panicked"),
            replaced,
            Vec::new(),
        );
        let g = self.file.into_inner().expect("a writer panicked");
        match g.error {
            Some(e) => Err(e),
            None => Ok(g.file),
        }
    }
}

/// Like [`stage_image`], with the modules' bytes written by `link` while it
/// relocates them, into the temporary file through the [`ModuleSink`] it
/// is given (see [`crate::link::link_files_streamed`]), instead of after
/// it: the writing overlaps the relocation, and the kernel's bytes go out
/// with the first batch. The patches the link did not write follow (and
/// the kernel's bytes, if no batch was written). If `link` fails, the
/// temporary file is removed.
pub fn stage_image_streamed(
    path: &Path,
    kernel: &[u8],
    link: impl FnOnce(&ModuleSink<'_>) -> Result<Prelinked>,
) -> Result<(Staged, Prelinked)> {
    let (staged, f) = Staged::create(path)?;
    f.set_len(kernel.len() as u64)
        .map_err(|e| staged.write_failed(e))?;
    let sink = ModuleSink::new(f, kernel);
    let p = link(&sink)?;
    let fill = |mut f: File| -> std::io::Result<()> {
        write_patches(&mut f, &p)?;
        f.flush()
    };
    sink.into_file(&p.replaced)
        .and_then(fill)
        .map_err(|e| staged.write_failed(e))?;
    Ok((staged, p))
}

/// What identifies a file for [`check_outputs`]: the device and inode it
/// resolves to (following symbolic links), if it exists, and its canonical
/// path (for a file that does not exist yet, its directory's canonical path
/// joined with its name).
struct Identity {
    id: Option<(u64, u64)>,
    canonical: PathBuf,
}

/// The device and inode `path` resolves to, if it exists.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn identity(path: &Path) -> Identity {
    let id = file_id(path);
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        match (abs.parent(), abs.file_name()) {
            (Some(d), Some(n)) => std::fs::canonicalize(d)
                .map(|d| d.join(n))
                .unwrap_or_else(|_| abs.clone()),
            _ => abs.clone(),
        }
    });
    Identity { id, canonical }
}

impl Identity {
    fn same(&self, other: &Identity) -> bool {
        self.canonical == other.canonical || (self.id.is_some() && self.id == other.id)
    }
}

/// Whether the input at `path` is the file the output `out` (at `out_path`)
/// names, as [`Identity::same`] would say, without resolving the input's
/// path where that cannot change the answer (a link has thousands of
/// inputs): an output that exists is an input only if the two resolve to
/// the same device and inode (equal canonical paths resolve to one file);
/// one that does not exist can only be an input that does not exist either,
/// whose canonical path is then its directory's joined with its name, so an
/// input with another file name is never it. `id` caches the input's
/// device and inode across outputs.
fn input_is(
    path: &Path,
    id: &mut Option<Option<(u64, u64)>>,
    out: &Identity,
    out_path: &Path,
) -> bool {
    if out.id.is_some() {
        return *id.get_or_insert_with(|| file_id(path)) == out.id;
    }
    match (path.file_name(), out_path.file_name()) {
        (Some(a), Some(b)) if a != b => false,
        _ => identity(path).same(out),
    }
}

/// Refuses outputs that would destroy an input or each other: an output that
/// is an input, or links to one (a symbolic or hard link: the same device
/// and inode, or the same canonical path), or that is another output. Each
/// path comes with what it is for the message (`"--output"`, `"the kernel"`).
/// An output that exists must be a regular file (or a link to one, which
/// is then written in place of the link): the rename that puts the new
/// file in place would replace a device node, and cannot replace a
/// directory. A symbolic link to nothing is refused. Nothing is read or written besides the
/// paths' metadata; call it before anything else.
pub fn check_outputs(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<()> {
    let mut in_ids: Vec<Option<Option<(u64, u64)>>> = vec![None; inputs.len()];
    let outs: Vec<Identity> = outputs.iter().map(|(_, p)| identity(p)).collect();
    for (i, (what, path)) in outputs.iter().enumerate() {
        output_target(path).map_err(|_| {
            err!(
                Usage,
                "{what} {} is a symbolic link to nothing that exists; nothing was written",
                path.display()
            )
        })?;
        if let Ok(m) = std::fs::metadata(path)
            && !m.is_file()
        {
            return Err(err!(
                Usage,
                "{what} {} exists and is not a regular file; nothing was written",
                path.display()
            ));
        }
        if let Some(j) =
            (0..inputs.len()).find(|&j| input_is(inputs[j].1, &mut in_ids[j], &outs[i], path))
        {
            let (iwhat, ipath) = inputs[j];
            return Err(err!(
                Usage,
                "{what} {} is the same file as {iwhat} {} (or a link to it): writing it would destroy that input; nothing was written",
                path.display(),
                ipath.display()
            ));
        }
        if let Some(j) = (0..i).find(|&j| outs[j].same(&outs[i])) {
            let (owhat, opath) = outputs[j];
            return Err(err!(
                Usage,
                "{what} {} is the same file as {owhat} {}: one output would overwrite the other; nothing was written",
                path.display(),
                opath.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches written while another write holds the file wait and go out
    /// later, each on its own: the zeros of one batch's slot padding never
    /// land on the slots of a batch written before it, whatever the order.
    #[test]
    fn waiting_batches_never_overwrite_other_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        // One region of 64 slots of 96 bytes, each module using 70 of them
        // (the rest is padding), in batches of 8 consecutive modules.
        let region = (4096u64, 4096 + 64 * 96);
        let data: Vec<Vec<u8>> = (0..64u8).map(|m| vec![m + 1; 70]).collect();
        let batch = |b: usize| -> Vec<(u64, &[u8])> {
            (8 * b..8 * b + 8)
                .rev()
                .map(|m| (region.0 + 96 * m as u64, &data[m][..]))
                .collect()
        };
        // The kernel's bytes, which the first write also puts outside the
        // region.
        let kernel = vec![0xeeu8; (region.1 + 100) as usize];
        for order in [[0usize, 1, 2, 3, 4, 5, 6, 7], [3, 0, 6, 1, 5, 2, 4, 7]] {
            let f = File::create(&path).unwrap();
            f.set_len(region.1 + 100).unwrap();
            let sink = ModuleSink::new(f, &kernel);
            let waiting = std::sync::Mutex::new(Vec::new());
            for (k, &b) in order.iter().enumerate() {
                if k % 3 == 1 {
                    // Another writer holds the file: the batch waits.
                    let _busy = sink.file.lock().unwrap();
                    sink.write(&[region], &waiting, batch(b));
                    assert!(!waiting.lock().unwrap().is_empty());
                } else {
                    sink.write(&[region], &waiting, batch(b));
                }
            }
            sink.flush(&[region], waiting);
            sink.into_file(&[region]).unwrap();
            let got = std::fs::read(&path).unwrap();
            let mut want = kernel.clone();
            want[region.0 as usize..region.1 as usize].fill(0);
            for (m, d) in data.iter().enumerate() {
                let at = (region.0 + 96 * m as u64) as usize;
                want[at..at + d.len()].copy_from_slice(d);
            }
            assert!(got == want, "order {order:?}");
        }
        // No batch at all (a link of no modules): the kernel's bytes are
        // written when the file is taken.
        let f = File::create(&path).unwrap();
        f.set_len(region.1 + 100).unwrap();
        let sink = ModuleSink::new(f, &kernel);
        sink.into_file(&[region]).unwrap();
        let mut want = kernel.clone();
        want[region.0 as usize..region.1 as usize].fill(0);
        assert!(std::fs::read(&path).unwrap() == want, "no batch");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The destination changes only on commit; an uncommitted or failed
    /// output leaves no temporary file and the destination as it was.
    #[test]
    fn staged_output_replaces_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        std::fs::write(&dest, b"old").unwrap();
        let s = stage(&dest, b"new").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        assert_eq!(
            names(dir.path()).len(),
            2,
            "the temporary file is beside it"
        );
        s.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["out.bin"]);
        drop(stage(&dest, b"dropped").unwrap());
        let e = Staged::new(&dest, |f| {
            f.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(e.message().contains("disk full"), "{e}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["out.bin"]);
        // A destination that cannot be replaced (a non-empty directory).
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("keep"), b"k").unwrap();
        assert!(write_atomic(&sub, b"x").is_err());
        assert_eq!(names(dir.path()), ["out.bin", "sub"]);
        assert_eq!(std::fs::read(sub.join("keep")).unwrap(), b"k");
    }

    /// Inputs that do not exist (yet) are still told apart from a new
    /// output only by path, however it is spelt; an existing input, never
    /// a new output, is matched by device and inode when the output exists.
    #[test]
    fn outputs_are_checked_against_missing_and_existing_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("in.o"), b"x").unwrap();
        std::fs::hard_link(d.join("in.o"), d.join("same.o")).unwrap();
        let missing = d.join("missing.o");
        let spelt = d.join("sub/../missing.o");
        let e =
            check_outputs(&[("the module input", &missing)], &[("--output", &spelt)]).unwrap_err();
        assert!(e.message().contains("is the same file as"), "{e}");
        let other = d.join("other.o");
        check_outputs(&[("the module input", &missing)], &[("--output", &other)]).unwrap();
        check_outputs(
            &[("the module input", &d.join("in.o"))],
            &[("--output", &other)],
        )
        .unwrap();
        let e = check_outputs(
            &[
                ("the kernel", &missing),
                ("the module input", &d.join("in.o")),
            ],
            &[("--output", &d.join("same.o"))],
        )
        .unwrap_err();
        assert!(e.message().contains("in.o"), "{e}");
    }

    /// An old output kept open survives a failed link as it was, and after
    /// being replaced it is closed without touching the new file.
    #[test]
    fn old_output_is_only_held() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("image.elf");
        std::fs::write(&dest, b"old image").unwrap();
        drop(hold_old_output(&dest));
        assert_eq!(std::fs::read(&dest).unwrap(), b"old image");
        let old = hold_old_output(&dest);
        write_atomic(&dest, b"new image").unwrap();
        drop(old.close_in_background());
        assert_eq!(std::fs::read(&dest).unwrap(), b"new image");
    }
}
