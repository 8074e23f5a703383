//! Runtime test module `rt_hello`, loaded from the initrd after boot: its
//! probe calls the built-in `pci` module's export, registers an IRQ handler
//! and a device, and keeps state in data; its self-test checks that state
//! and a rodata table, and says at which address it runs. It exports
//! `rt_hello_version` to modules loaded after it.

#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};
use module_api::irq::{self, IrqHandler};
use module_api::pci::PciDevice;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "rt_hello",
    depends: ["pci"],
    exports: [rt_hello_version],
    probe: probe,
    selftest: selftest,
}

module_api::import_fn! {
    fn pci_find_class(class: u8, subclass: u8, index: u32, out: &mut PciDevice) -> bool;
}

module_api::export_fn! {
    /// The version later modules check.
    pub fn rt_hello_version() -> u32 {
        VERSION
    }
}

/// What `rt_hello_version` returns.
const VERSION: u32 = 0x0001_0203;
/// An IRQ line no device of the test machine uses.
const IRQ: u8 = 10;
/// A rodata table the self-test sums.
static PRIMES: [u32; 8] = [2, 3, 5, 7, 11, 13, 17, 19];
/// Set by the probe (data), checked by the self-test.
static PROBED: AtomicU32 = AtomicU32::new(0);

struct Handler;

impl IrqHandler for Handler {
    fn handle(&self) {}
}

static HANDLER: Handler = Handler;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let mut bridge = PciDevice::default();
    if !pci_find_class(0x06, 0x00, 0, &mut bridge) {
        return Err(ProbeError::no_device(format_args!(
            "rt_hello: pci found no host bridge"
        )));
    }
    irq::register(IRQ, &HANDLER)?;
    device::register("rt-hello")?;
    PROBED.store(0x5a5a, Ordering::SeqCst);
    info!(
        "rt_hello: probed; host bridge {:04x}:{:04x} (through pci's export), IRQ {IRQ} handler registered",
        bridge.vendor, bridge.device
    );
    Ok(())
}

fn selftest() -> Result<(), ProbeError> {
    let sum: u32 = core::hint::black_box(&PRIMES).iter().sum();
    if PROBED.load(Ordering::SeqCst) != 0x5a5a || sum != 77 {
        return Err(ProbeError::io(format_args!(
            "rt_hello: state lost (sum {sum})"
        )));
    }
    let at = selftest as fn() -> Result<(), ProbeError> as usize;
    info!("rt_hello: selftest running at {at:#x}, data and rodata intact");
    Ok(())
}
