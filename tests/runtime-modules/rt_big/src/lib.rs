//! Runtime test module `rt_big`: a 1.8 MiB rodata table, more than the
//! rodata pool of the test machine holds, so the loader takes a fresh 2 MiB
//! page for it; the self-test reads the table where it was placed.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "rt_big",
    probe: probe,
    selftest: selftest,
}

const PAGE: usize = 4096;
/// Pages in the table: 1.84 MiB.
const PAGES: usize = 470;

const fn page() -> [u8; PAGE] {
    let mut p = [0u8; PAGE];
    let mut i = 0;
    while i < PAGE {
        p[i] = (i * 7 + 3) as u8;
        i += 1;
    }
    p
}

const PAGE_BYTES: [u8; PAGE] = page();
static TABLE: [[u8; PAGE]; PAGES] = [PAGE_BYTES; PAGES];

fn check() -> Result<(), ProbeError> {
    let t = core::hint::black_box(&TABLE);
    for p in [0, PAGES / 2, PAGES - 1] {
        for i in [0, 1, PAGE - 1] {
            let want = (i * 7 + 3) as u8;
            if t[p][i] != want {
                return Err(ProbeError::io(format_args!(
                    "rt_big: table[{p}][{i}] = {:#x}, expected {want:#x}",
                    t[p][i]
                )));
            }
        }
    }
    Ok(())
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    check()?;
    info!(
        "rt_big: {} bytes of rodata at {:#x}",
        PAGES * PAGE,
        &TABLE as *const _ as usize
    );
    Ok(())
}

fn selftest() -> Result<(), ProbeError> {
    check()
}
