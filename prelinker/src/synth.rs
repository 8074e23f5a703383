//! Synthetic kernel images for tests and benchmarks: a minimal static x86_64
//! ELF executable with the sections the prelinker needs (`.text`,
//! `.kexports`, the three module regions, `.modtable`).

use crate::elf::{
    EM_X86_64, ET_EXEC, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_PROGBITS, SHT_STRTAB,
};
use crate::kernel::{
    KEXPORT_ADDR_AT, KEXPORT_NAME_LEN, KEXPORT_SIG_AT, KEXPORT_SIZE, KEXPORTS_SECTION,
    MODTABLE_SECTION, REGION_SECTIONS,
};
use crate::layout::align_up;
use modtable::PerClass;

/// Base of the higher half where the kernel lives.
pub const KERNEL_BASE: u64 = crate::kernel::CODE_MODEL_BASE;
/// Address of the synthetic kernel's `.text` (kernel exports point there).
pub const KERNEL_TEXT: u64 = KERNEL_BASE + 0x20_0000;

/// What the synthetic kernel looks like.
#[derive(Clone, Debug)]
pub struct KernelSpec {
    /// Size of each class region.
    pub region_size: PerClass<u64>,
    /// Address of the text region (the others follow, 2 MiB aligned); `None`
    /// for the default, 2 MiB above the kernel text.
    pub region_base: Option<u64>,
    /// Size of `.modtable`.
    pub modtable_size: u64,
    /// Exported symbols and their addresses.
    pub exports: Vec<(String, u64)>,
}

impl Default for KernelSpec {
    fn default() -> Self {
        KernelSpec {
            region_size: PerClass([2 << 20; 3]),
            region_base: None,
            modtable_size: 256 << 10,
            exports: default_exports(),
        }
    }
}

/// Every service of [`modabi::KERNEL_SERVICES`] at 16-byte steps in
/// the kernel's text.
pub fn default_exports() -> Vec<(String, u64)> {
    modabi::KERNEL_SERVICES
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), KERNEL_TEXT + 16 * i as u64))
        .collect()
}

/// Address of a default export.
pub fn export_addr(name: &str) -> u64 {
    default_exports()
        .into_iter()
        .find(|e| e.0 == name)
        .unwrap_or_else(|| panic!("no kernel export {name}"))
        .1
}

/// One section of the synthetic ELF.
struct Sec {
    name: &'static str,
    flags: u64,
    addr: u64,
    data: Vec<u8>,
    align: u64,
}

/// Where the synthetic kernel's regions are, for a spec.
pub fn region_bases(spec: &KernelSpec) -> PerClass<u64> {
    let mut a = spec.region_base.unwrap_or(KERNEL_BASE + 0x40_0000);
    let mut out = PerClass([0; 3]);
    for i in 0..3 {
        out.0[i] = a;
        a = align_up(a + spec.region_size.0[i], 2 << 20);
    }
    out
}

/// Builds the kernel ELF bytes.
pub fn kernel_elf(spec: &KernelSpec) -> Vec<u8> {
    let mut kexports = Vec::with_capacity(spec.exports.len() * KEXPORT_SIZE);
    for (n, a) in &spec.exports {
        assert!(n.len() < KEXPORT_NAME_LEN, "export name too long: {n}");
        let mut rec = [0u8; KEXPORT_SIZE];
        rec[..n.len()].copy_from_slice(n.as_bytes());
        // The signature hash a real kernel records for the same service.
        let sig = modabi::service_signature(n).map_or(0, modabi::signature_hash);
        rec[KEXPORT_SIG_AT..KEXPORT_ADDR_AT].copy_from_slice(&sig.to_le_bytes());
        rec[KEXPORT_ADDR_AT..].copy_from_slice(&a.to_le_bytes());
        kexports.extend_from_slice(&rec);
    }
    let bases = region_bases(spec);
    let after = align_up(bases.0[2] + spec.region_size.0[2], 4096);
    let mut secs = vec![
        Sec {
            name: ".text",
            flags: SHF_ALLOC | SHF_EXECINSTR,
            addr: KERNEL_TEXT,
            data: vec![0xc3; 0x1000],
            align: 4096,
        },
        Sec {
            name: KEXPORTS_SECTION,
            flags: SHF_ALLOC,
            addr: KERNEL_TEXT + 0x1000,
            data: kexports,
            align: 8,
        },
    ];
    let flags = [SHF_ALLOC | SHF_EXECINSTR, SHF_ALLOC, SHF_ALLOC | SHF_WRITE];
    for i in 0..3 {
        secs.push(Sec {
            name: REGION_SECTIONS[i],
            flags: flags[i],
            addr: bases.0[i],
            data: vec![0; spec.region_size.0[i] as usize],
            align: 2 << 20,
        });
    }
    secs.push(Sec {
        name: MODTABLE_SECTION,
        flags: SHF_ALLOC,
        addr: after,
        data: vec![0; spec.modtable_size as usize],
        align: 4096,
    });
    // shstrtab
    let mut shstr = vec![0u8];
    let mut name_offs = Vec::new();
    for s in secs.iter().map(|s| s.name).chain([".shstrtab"]) {
        name_offs.push(shstr.len() as u32);
        shstr.extend_from_slice(s.as_bytes());
        shstr.push(0);
    }
    let mut out = vec![0u8; 64];
    let mut offs = Vec::new();
    for s in &secs {
        let off = align_up(out.len() as u64, 4096);
        out.resize(off as usize, 0);
        offs.push(off);
        out.extend_from_slice(&s.data);
    }
    let shstr_off = out.len() as u64;
    out.extend_from_slice(&shstr);
    let shoff = align_up(out.len() as u64, 8);
    out.resize(shoff as usize, 0);
    let mut sh = |name: u32, typ: u32, flags: u64, addr: u64, off: u64, size: u64, align: u64| {
        for v in [name.to_le_bytes().to_vec(), typ.to_le_bytes().to_vec()] {
            out.extend_from_slice(&v);
        }
        for v in [flags, addr, off, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[0u8; 8]); // link, info
        out.extend_from_slice(&align.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
    };
    sh(0, 0, 0, 0, 0, 0, 0);
    for (i, s) in secs.iter().enumerate() {
        sh(
            name_offs[i],
            SHT_PROGBITS,
            s.flags,
            s.addr,
            offs[i],
            s.data.len() as u64,
            s.align,
        );
    }
    sh(
        name_offs[secs.len()],
        SHT_STRTAB,
        0,
        0,
        shstr_off,
        shstr.len() as u64,
        1,
    );
    let shnum = secs.len() as u16 + 2;
    let h = &mut out[..64];
    h[..4].copy_from_slice(&object::elf::ELFMAG);
    h[4] = object::elf::ELFCLASS64.0;
    h[5] = object::elf::ELFDATA2LSB.0;
    h[6] = object::elf::EV_CURRENT.0;
    h[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
    h[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    h[20..24].copy_from_slice(&u32::from(object::elf::EV_CURRENT.0).to_le_bytes());
    h[24..32].copy_from_slice(&KERNEL_TEXT.to_le_bytes());
    h[40..48].copy_from_slice(&shoff.to_le_bytes());
    h[52..54].copy_from_slice(&64u16.to_le_bytes());
    h[58..60].copy_from_slice(&64u16.to_le_bytes());
    h[60..62].copy_from_slice(&shnum.to_le_bytes());
    h[62..64].copy_from_slice(&(shnum - 1).to_le_bytes());
    out
}
