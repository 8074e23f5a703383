//! The I/O floor of a link: a native read of exactly the byte ranges the
//! prelinker needs of its inputs (what `prelinker::input::module_needed_ranges`
//! and `prelinker::kernel::kernel_read_ranges` give) into one reused buffer,
//! and a write of exactly the ranges it writes (`prelinker::image::written_ranges`)
//! into a new file of the image's length, from the same buffer. No parsing,
//! no relocation, no allocation per file: what a link of these inputs cannot
//! do without.
//!
//! The bench writes a manifest once and times `bench io-floor MANIFEST` as a
//! process, like the linkers. Manifest lines: `r PATH` starts an input,
//! `w LEN PATH` the output, and `START END` lines are byte ranges of the
//! file named last.

use crate::util::Res;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// I/O is done in pieces of at most this many bytes, through one buffer.
const CHUNK: usize = 1 << 20;

/// What the floor reads and writes.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// Input files and their ranges.
    pub reads: Vec<(PathBuf, Vec<(u64, u64)>)>,
    /// Output file, its length and the ranges written.
    pub write: (PathBuf, u64, Vec<(u64, u64)>),
}

impl Manifest {
    /// The manifest of the link `p` of `objects` into `kernel` (an image of
    /// `image_len` bytes), writing `output`.
    pub fn of_link(
        kernel: &Path,
        objects: &[PathBuf],
        p: &prelinker::Prelinked,
        image_len: u64,
        output: &Path,
    ) -> Res<Manifest> {
        let e = |e: prelinker::Error| e.to_string();
        let mut reads = vec![(
            kernel.to_path_buf(),
            prelinker::kernel::kernel_read_ranges(kernel).map_err(e)?,
        )];
        for o in objects {
            reads.push((
                o.clone(),
                prelinker::input::module_needed_ranges(o).map_err(e)?,
            ));
        }
        let written = prelinker::image::written_ranges(image_len, p);
        Ok(Manifest {
            reads,
            write: (output.to_path_buf(), image_len, written),
        })
    }

    /// Bytes read.
    pub fn read_bytes(&self) -> u64 {
        self.reads
            .iter()
            .flat_map(|r| r.1.iter())
            .map(|(s, e)| e - s)
            .sum()
    }

    /// Number of read ranges.
    pub fn read_ranges(&self) -> usize {
        self.reads.iter().map(|r| r.1.len()).sum()
    }

    /// Bytes written.
    pub fn written_bytes(&self) -> u64 {
        self.write.2.iter().map(|(s, e)| e - s).sum()
    }

    /// Writes the manifest file.
    pub fn save(&self, path: &Path) -> Res<()> {
        let mut s = String::new();
        let ranges = |s: &mut String, r: &[(u64, u64)]| {
            for (a, b) in r {
                s.push_str(&format!("{a} {b}\n"));
            }
        };
        for (p, r) in &self.reads {
            s.push_str(&format!("r {}\n", p.display()));
            ranges(&mut s, r);
        }
        s.push_str(&format!("w {} {}\n", self.write.1, self.write.0.display()));
        ranges(&mut s, &self.write.2);
        std::fs::write(path, s).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn load(path: &Path) -> Res<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut m = Manifest::default();
        let mut writing = false;
        for (i, line) in text.lines().enumerate() {
            let bad = || format!("{}:{}: bad line `{line}`", path.display(), i + 1);
            if let Some(p) = line.strip_prefix("r ") {
                m.reads.push((PathBuf::from(p), Vec::new()));
            } else if let Some(rest) = line.strip_prefix("w ") {
                let (len, p) = rest.split_once(' ').ok_or_else(bad)?;
                m.write = (
                    PathBuf::from(p),
                    len.parse().map_err(|_| bad())?,
                    Vec::new(),
                );
                writing = true;
            } else {
                let (a, b) = line.split_once(' ').ok_or_else(bad)?;
                let r = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if writing {
                    m.write.2.push(r);
                } else {
                    m.reads.last_mut().ok_or_else(bad)?.1.push(r);
                }
            }
        }
        Ok(m)
    }
}

/// `bench io-floor MANIFEST`: does the manifest's I/O.
pub fn run(manifest: &Path) -> Res<()> {
    let m = Manifest::load(manifest)?;
    let mut buf = vec![0u8; CHUNK];
    for (path, ranges) in &m.reads {
        let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for &(s, e) in ranges {
            let mut at = s;
            while at < e {
                let n = ((e - at) as usize).min(CHUNK);
                f.read_exact_at(&mut buf[..n], at)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                at += n as u64;
            }
        }
    }
    let (path, len, ranges) = &m.write;
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    f.set_len(*len).map_err(io)?;
    for &(s, e) in ranges {
        let mut at = s;
        while at < e {
            let n = ((e - at) as usize).min(CHUNK);
            f.write_all_at(&buf[..n], at).map_err(io)?;
            at += n as u64;
        }
    }
    f.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_the_floor_does_its_io() {
        let dir = std::env::temp_dir().join(format!("plk-floor-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in with space.o");
        std::fs::write(&input, vec![7u8; 3 << 20]).unwrap();
        let out = dir.join("out.elf");
        let m = Manifest {
            reads: vec![(input.clone(), vec![(0, 64), (100, (2 << 20) + 5)])],
            write: (
                out.clone(),
                4 << 20,
                vec![(0, 10), (1 << 20, (3 << 20) + 1)],
            ),
        };
        let path = dir.join("m.txt");
        m.save(&path).unwrap();
        let back = Manifest::load(&path).unwrap();
        assert_eq!(back.reads, m.reads);
        assert_eq!(back.write, m.write);
        assert_eq!(m.read_bytes(), 64 + (2 << 20) + 5 - 100);
        run(&path).unwrap();
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 4 << 20);
        // The output must not exist before a run.
        assert!(run(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
