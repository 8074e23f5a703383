//! Module `scale_00000`: the template of the synthetic modules of the scale
//! images (`make scale-image N=...`). The object is built once; the scale
//! generator (`bench scale-modules`) writes copies of it named
//! `scale_00001`, `scale_00002`, ... by patching the name in place (it is
//! in `.modinfo` and in the probe's name string), so every copy has the
//! same code, sizes and relocations, and its probe decides from its name.
//!
//! Copy `i` is a driver for the PCI function at bus 0, slot [`slot`]`(i)`:
//! it reads the function's configuration header through the module API,
//! decodes its class and BARs, and is kept if a function answers there and
//! its class is known. On QEMU's `pc` machine slots 0 to 3 hold the host
//! bridge, the ISA bridge, the VGA adapter and the NIC, and slots 16 to 23
//! are empty, so exactly one copy in [`FAIL_EVERY`] (those with
//! `i % FAIL_EVERY == 0`) fails, with the reason "no PCI function at
//! 00:1x.0". The first copy is one of them, so in an image linked without
//! an expectation every kept copy moves down at boot, whatever the count.

#![no_std]
#![forbid(unsafe_code)]

use module_api::pci::{Bar, KernelConfig, PciDevice};
use module_api::{ProbeContext, ProbeError, debug, info};

module_api::module! {
    name: "scale_00000",
    probe: probe,
    selftest: selftest,
}

mod plan;
pub use plan::{FAIL_EVERY, slot};

/// The copy's index, from its name (`scale_NNNNN`).
fn index(name: &str) -> Option<u32> {
    name.strip_prefix("scale_")?.parse().ok()
}

/// Names of the PCI base classes and of some subclasses, as a driver's
/// tables would have them.
static CLASSES: [(u8, u8, &str); 24] = [
    (0x00, 0x00, "unclassified device"),
    (0x01, 0x00, "SCSI controller"),
    (0x01, 0x01, "IDE controller"),
    (0x01, 0x06, "SATA controller"),
    (0x01, 0x08, "NVMe controller"),
    (0x02, 0x00, "Ethernet controller"),
    (0x02, 0x80, "network controller"),
    (0x03, 0x00, "VGA controller"),
    (0x03, 0x80, "display controller"),
    (0x04, 0x01, "audio device"),
    (0x04, 0x03, "HD audio controller"),
    (0x05, 0x00, "RAM controller"),
    (0x06, 0x00, "host bridge"),
    (0x06, 0x01, "ISA bridge"),
    (0x06, 0x04, "PCI bridge"),
    (0x06, 0x80, "bridge"),
    (0x07, 0x00, "serial controller"),
    (0x08, 0x00, "interrupt controller"),
    (0x08, 0x80, "system peripheral"),
    (0x0c, 0x03, "USB controller"),
    (0x0c, 0x05, "SMBus controller"),
    (0x0d, 0x00, "wireless controller"),
    (0x10, 0x00, "encryption controller"),
    (0x11, 0x00, "signal processing controller"),
];

fn class_name(d: &PciDevice) -> Option<&'static str> {
    CLASSES
        .iter()
        .find(|c| c.0 == d.class && c.1 == d.subclass)
        .or_else(|| CLASSES.iter().find(|c| c.0 == d.class))
        .map(|c| c.2)
}

/// What the probe found, for the log and the self-test.
struct Found {
    dev: PciDevice,
    class: &'static str,
    io_bars: u32,
    mem_bars: u32,
    mem_below_4g: u64,
}

fn examine(bdf: u32) -> Result<Found, ProbeError> {
    let dev = PciDevice::read(&KernelConfig, bdf).ok_or_else(|| {
        ProbeError::no_device(format_args!(
            "no PCI function at 00:{:02x}.{}",
            (bdf >> 3) & 0x1f,
            bdf & 7
        ))
    })?;
    let class = class_name(&dev).ok_or_else(|| {
        ProbeError::unsupported(format_args!(
            "{dev}: class {:02x}.{:02x} not handled",
            dev.class, dev.subclass
        ))
    })?;
    let (mut io_bars, mut mem_bars, mut mem_below_4g) = (0, 0, 0);
    let nbars = if dev.header_type & 0x7f == 0 { 6 } else { 2 };
    let mut i = 0;
    while i < nbars {
        match dev.bar(i) {
            Some(Bar::Io(port)) => {
                io_bars += 1;
                debug!("00:{:02x}.0 bar {i}: io {port:#06x}", dev.dev());
            }
            Some(Bar::Memory { base, prefetchable }) => {
                mem_bars += 1;
                if base < 1 << 32 {
                    mem_below_4g += 1;
                }
                debug!(
                    "00:{:02x}.0 bar {i}: memory {base:#x}{}",
                    dev.dev(),
                    if prefetchable { " prefetchable" } else { "" }
                );
                // A 64-bit BAR takes two slots.
                if dev.bars[i] >> 1 & 3 == 2 {
                    i += 1;
                }
            }
            None => {}
        }
        i += 1;
    }
    Ok(Found {
        dev,
        class,
        io_bars,
        mem_bars,
        mem_below_4g,
    })
}

fn probe(ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    // Opaque to the optimiser: every copy must read its own name.
    let name = core::hint::black_box(ctx.module_name());
    let i = index(name)
        .ok_or_else(|| ProbeError::unsupported(format_args!("{name}: not a scale_NNNNN name")))?;
    let f = examine(slot(i) << 3)?;
    info!(
        "{name}: {} ({}), {} io and {} memory BARs ({} below 4 GiB), irq {}",
        f.dev, f.class, f.io_bars, f.mem_bars, f.mem_below_4g, f.dev.irq_line
    );
    Ok(())
}

/// After compaction: the same function still answers with the same ids.
fn selftest() -> Result<(), ProbeError> {
    let name = core::hint::black_box("scale_00000");
    let i = index(name).unwrap_or(0);
    let f = examine(slot(i) << 3)?;
    if f.dev.vendor == 0xffff {
        return Err(ProbeError::io(format_args!("{name}: function vanished")));
    }
    Ok(())
}
