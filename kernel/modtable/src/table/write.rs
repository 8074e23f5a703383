//! Writing a table (the prelinker's side): [`build`] serialises the header,
//! the module records, the relocation groups, the dependencies and the names
//! into one buffer of the final size.

use super::format::{
    CHECKSUM_AT, GROUP_RECORD_SIZE, HEADER_SIZE, Header, MAGIC, MODULE_RECORD_SIZE, ModuleRecord,
    Placement, RelocField, VERSION, encode_target, table_checksum,
};

/// Everything the writer needs to know about one module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleEntry {
    /// Module name.
    pub name: alloc::string::String,
    /// Indices of the modules it depends on (all smaller than its own index).
    pub deps: alloc::vec::Vec<u16>,
    /// Slots, sizes, entry points, checksum and prediction.
    pub placement: Placement,
    /// Fields to redo when the module moves.
    pub relocs: RelocGroups,
}

/// A module's relocated fields, grouped as the table stores them: by target
/// (class, module), place class and kind, in that order, with each group's
/// offsets sorted. Grouping is per module, so a writer may do it for many
/// modules in parallel before [`build`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelocGroups {
    /// Each group's key (target class, target module, place class, kind,
    /// packed in that order of significance) and number of offsets.
    groups: alloc::vec::Vec<(u64, u32)>,
    /// The offsets, group after group.
    offsets: alloc::vec::Vec<u32>,
}

impl RelocGroups {
    /// Groups `fields`.
    pub fn new(fields: impl IntoIterator<Item = RelocField>) -> RelocGroups {
        let fields = fields.into_iter();
        // At most as many as the iterator's upper bound (a filter of a list):
        // one allocation rather than a doubling series.
        let (lo, hi) = fields.size_hint();
        let mut v: alloc::vec::Vec<(u64, u32)> = alloc::vec::Vec::with_capacity(hi.unwrap_or(lo));
        v.extend(fields.map(|f| {
            let (tclass, tmod) = encode_target(f.target);
            let key = (tclass as u64) << 32
                | (tmod as u64) << 16
                | (f.place_class as u64) << 8
                | f.kind as u64;
            (key, f.place_off)
        }));
        Self::of_pairs(v)
    }

    /// Groups `(key, offset)` pairs: a counting sort by key (a module's
    /// fields have a few keys, and runs of fields usually share one: each
    /// pair's key is looked up once per run, and the pair remembers which
    /// it is), then each group's offsets sorted (usually already in order,
    /// since fields come in section order and sections in offset order).
    /// The result is that of sorting the pairs.
    fn of_pairs(v: alloc::vec::Vec<(u64, u32)>) -> RelocGroups {
        // The distinct keys in order of first appearance with their counts,
        // and the index among them of each pair's key.
        let mut seen: alloc::vec::Vec<(u64, u32)> = alloc::vec::Vec::new();
        let mut which: alloc::vec::Vec<u32> = alloc::vec::Vec::with_capacity(v.len());
        let mut last = usize::MAX;
        for &(key, _) in &v {
            if seen.get(last).is_none_or(|g| g.0 != key) {
                last = match seen.iter().position(|g| g.0 == key) {
                    Some(i) => i,
                    None => {
                        seen.push((key, 0));
                        seen.len() - 1
                    }
                };
            }
            seen[last].1 += 1;
            which.push(last as u32);
        }
        // The groups in key order, and where each seen key's next offset
        // goes.
        let mut order: alloc::vec::Vec<usize> = (0..seen.len()).collect();
        order.sort_unstable_by_key(|&i| seen[i].0);
        let mut next = alloc::vec![0usize; seen.len()];
        let mut groups: alloc::vec::Vec<(u64, u32)> = alloc::vec::Vec::with_capacity(seen.len());
        let mut at = 0;
        for &i in &order {
            next[i] = at;
            at += seen[i].1 as usize;
            groups.push(seen[i]);
        }
        let mut offsets = alloc::vec![0u32; v.len()];
        for (&(_, off), &w) in v.iter().zip(&which) {
            let n = &mut next[w as usize];
            offsets[*n] = off;
            *n += 1;
        }
        let mut start = 0;
        for &(_, n) in &groups {
            let g = &mut offsets[start..start + n as usize];
            if !g.is_sorted() {
                g.sort_unstable();
            }
            start += n as usize;
        }
        RelocGroups { groups, offsets }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

/// Serialises a module table.
pub fn build(header: &Header, modules: &[ModuleEntry]) -> alloc::vec::Vec<u8> {
    let n = modules.len();
    let groups_count: usize = modules.iter().map(|m| m.relocs.groups.len()).sum();
    let offsets_count: usize = modules.iter().map(|m| m.relocs.len()).sum();
    let deps_count: usize = modules.iter().map(|m| m.deps.len()).sum();
    let modules_off = HEADER_SIZE;
    let groups_off = modules_off + n * MODULE_RECORD_SIZE;
    let offsets_off = groups_off + groups_count * GROUP_RECORD_SIZE;
    let deps_off = offsets_off + offsets_count * 4;
    let strings_off = deps_off + deps_count * 2;
    let strings_len: usize = modules.iter().map(|m| m.name.len()).sum();
    let table_size = strings_off + strings_len;
    // Every part is written in place into one buffer of the final size.
    let mut out = alloc::vec![0u8; table_size];
    let put32 =
        |out: &mut [u8], at: usize, w: u32| out[at..at + 4].copy_from_slice(&w.to_le_bytes());
    out[..8].copy_from_slice(&MAGIC);
    for (i, w) in [VERSION, n as u32, header.slot_align, table_size as u32]
        .into_iter()
        .enumerate()
    {
        put32(&mut out, 8 + 4 * i, w);
    }
    for (i, v) in header
        .region_base
        .0
        .iter()
        .chain(header.region_size.0.iter())
        .enumerate()
    {
        out[24 + 8 * i..32 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    for (i, w) in [
        modules_off as u32,
        groups_off as u32,
        groups_count as u32,
        deps_off as u32,
        deps_count as u32,
        strings_off as u32,
        strings_len as u32,
        offsets_off as u32,
        offsets_count as u32,
        0,
    ]
    .into_iter()
    .enumerate()
    {
        put32(&mut out, 72 + 4 * i, w);
    }
    debug_assert_eq!(72 + 40 + 8, HEADER_SIZE);
    let (mut group_i, mut offset_i, mut dep_i, mut string_i) = (0usize, 0usize, 0usize, 0usize);
    for (mi, m) in modules.iter().enumerate() {
        let g = &m.relocs;
        let rec = ModuleRecord {
            name_off: string_i as u32,
            name_len: m.name.len() as u32,
            deps_start: dep_i as u32,
            deps_count: m.deps.len() as u32,
            groups_start: group_i as u32,
            groups_count: g.groups.len() as u32,
            placement: m.placement,
        };
        let at = modules_off + mi * MODULE_RECORD_SIZE;
        out[at..at + MODULE_RECORD_SIZE].copy_from_slice(&rec.to_bytes());
        let at = strings_off + string_i;
        out[at..at + m.name.len()].copy_from_slice(m.name.as_bytes());
        string_i += m.name.len();
        for d in &m.deps {
            let at = deps_off + 2 * dep_i;
            out[at..at + 2].copy_from_slice(&d.to_le_bytes());
            dep_i += 1;
        }
        let mut from = 0usize;
        for &(key, count) in &g.groups {
            let gr = &mut out[groups_off + group_i * GROUP_RECORD_SIZE..][..GROUP_RECORD_SIZE];
            gr[0] = key as u8;
            gr[1] = (key >> 8) as u8;
            gr[2] = (key >> 32) as u8;
            gr[4..6].copy_from_slice(&((key >> 16) as u16).to_le_bytes());
            gr[8..12].copy_from_slice(&(offset_i as u32).to_le_bytes());
            gr[12..16].copy_from_slice(&count.to_le_bytes());
            group_i += 1;
            let dst = &mut out[offsets_off + 4 * offset_i..][..4 * count as usize];
            for (d, o) in dst
                .chunks_exact_mut(4)
                .zip(&g.offsets[from..from + count as usize])
            {
                d.copy_from_slice(&o.to_le_bytes());
            }
            from += count as usize;
            offset_i += count as usize;
        }
    }
    let sum = table_checksum(&out);
    out[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::RelocGroups;
    use alloc::vec::Vec;

    /// The grouping is exactly that of sorting the pairs, for runs of keys
    /// and offsets in and out of order.
    #[test]
    fn grouping_matches_a_sort() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for case in 0..300 {
            let len = rand(400) as usize;
            let keys = 1 + rand(if case % 3 == 0 { 40 } else { 6 });
            let mut off = 0u32;
            let v: Vec<(u64, u32)> = (0..len)
                .map(|_| {
                    // Mostly ascending offsets, sometimes a step back, and
                    // repeated pairs.
                    off = match rand(10) {
                        0 => off.saturating_sub(rand(64) as u32),
                        1 => off,
                        _ => off + rand(32) as u32,
                    };
                    (rand(keys) << 16 | rand(3), off)
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_unstable();
            let g = RelocGroups::of_pairs(v);
            let mut expect: Vec<(u64, u32)> = Vec::new();
            for &(k, _) in &sorted {
                match expect.last_mut() {
                    Some(e) if e.0 == k => e.1 += 1,
                    _ => expect.push((k, 1)),
                }
            }
            assert_eq!(g.groups, expect, "case {case}");
            let offs: Vec<u32> = sorted.iter().map(|p| p.1).collect();
            assert_eq!(g.offsets, offs, "case {case}");
        }
    }
}
