//! Module sets made from real module objects: copies renamed in place, so
//! that code, sizes, symbols and relocations stay those of the original.

use std::path::{Path, PathBuf};

/// Every offset of `needle` in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut at = Vec::new();
    let mut i = 0;
    while let Some(p) = hay[i..].windows(needle.len()).position(|w| w == needle) {
        at.push(i + p);
        i += p + needle.len();
    }
    at
}

/// The module name in an object's `.modinfo` (`name=...\0`).
pub fn module_name(data: &[u8]) -> Result<String, String> {
    let at = find_all(data, b"name=")
        .into_iter()
        .find(|&a| {
            data[a + 5..]
                .iter()
                .take_while(|&&b| b != 0)
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .ok_or("no name= entry")?
        + 5;
    let len = data[at..]
        .iter()
        .position(|&b| b == 0)
        .ok_or("name= not terminated")?;
    Ok(String::from_utf8_lossy(&data[at..at + len]).into_owned())
}

/// `data` with every occurrence of `old` replaced by `new` (same length);
/// fails unless it occurs at least `min` times.
pub fn rename(data: &[u8], old: &str, new: &str, min: usize) -> Result<Vec<u8>, String> {
    assert_eq!(old.len(), new.len(), "renames keep the length");
    let at = find_all(data, old.as_bytes());
    if at.len() < min {
        return Err(format!(
            "`{old}` occurs {} times, expected at least {min}",
            at.len()
        ));
    }
    let mut out = data.to_vec();
    for a in at {
        out[a..a + new.len()].copy_from_slice(new.as_bytes());
    }
    Ok(out)
}

fn write(dir: &Path, name: &str, data: &[u8]) -> Result<PathBuf, String> {
    let p = dir.join(format!("{name}.o"));
    std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(p)
}

/// A set of `n` modules for linker comparisons: the real `pci.o` (which
/// exports to the others) once, then copies of the other real modules in
/// turn, each with the name in its `.modinfo` replaced by a unique name of
/// the same length (`x` and base-36 digits).
pub fn real_module_set(modules: &Path, n: usize, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(modules)
        .map_err(|e| format!("{}: {e} (run `make image`)", modules.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    files.sort();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let pci = files
        .iter()
        .find(|p| p.ends_with("pci.o"))
        .ok_or_else(|| format!("no pci.o in {}", modules.display()))?;
    let others: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|p| !p.ends_with("pci.o"))
        .map(|p| {
            let d = read(p)?;
            Ok((module_name(&d)?, d))
        })
        .collect::<Result<_, String>>()?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = vec![write(dir, "pci", &read(pci)?)?];
    const B36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    for i in 0..n.saturating_sub(1) {
        let (name, data) = &others[i % others.len()];
        let width = name.len() - 1;
        if (i as f64) >= 36f64.powi(width as i32) {
            return Err(format!("module name `{name}` is too short for {n} copies"));
        }
        let mut digits = vec![b'0'; width];
        let mut v = i;
        for d in digits.iter_mut().rev() {
            *d = B36[v % 36];
            v /= 36;
        }
        let new = format!("x{}", String::from_utf8_lossy(&digits));
        // Only the `.modinfo` entry: other occurrences of a real module's
        // name (say, in its messages) are left alone.
        let entry = format!("name={name}\0");
        let renamed = rename(data, &entry, &format!("name={new}\0"), 1)?;
        out.push(write(dir, &new, &renamed)?);
    }
    out.truncate(n);
    Ok(out)
}

/// Name of copy `i` of the scale template.
pub fn scale_name(i: usize) -> String {
    format!("scale_{i:05}")
}

/// The `n` modules of a scale image: copies `scale_00000`..  of the
/// template object (tests/scale-module), the name replaced everywhere (in
/// `.modinfo` and in the string the probe reads it from).
pub fn scale_module_set(template: &Path, n: usize, dir: &Path) -> Result<Vec<PathBuf>, String> {
    if n > 100_000 {
        return Err(format!("{n} copies: at most 100000 (five digits)"));
    }
    let data = std::fs::read(template).map_err(|e| format!("{}: {e}", template.display()))?;
    let base = scale_name(0);
    let name = module_name(&data)?;
    if name != base {
        return Err(format!(
            "{}: module `{name}`, expected the template `{base}`",
            template.display()
        ));
    }
    // Start from an empty directory, so that a smaller set leaves no stale
    // copies behind for a `*.o` glob.
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    (0..n)
        .map(|i| {
            let new = scale_name(i);
            write(dir, &new, &rename(&data, &base, &new, 2)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_every_occurrence_in_place() {
        let d = b"\x7fELF..name=scale_00000\0..probe of scale_00000";
        let r = rename(d, "scale_00000", "scale_00042", 2).unwrap();
        assert_eq!(module_name(&r).unwrap(), "scale_00042");
        assert_eq!(r.len(), d.len());
        assert!(rename(d, "scale_00000", "scale_00042", 3).is_err());
        assert_eq!(scale_name(7), "scale_00007");
    }
}
