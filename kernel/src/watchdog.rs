//! The NMI watchdog. Module code called with interrupts off (an IRQ
//! handler, a console write) cannot be cut off by the timer tick the way a
//! probe is, so a callback that spins in its own code would hang its CPU
//! for ever. The kernel therefore also routes the PIT's interrupt (ISA
//! IRQ 0, at [`crate::arch::irq::TIMER_HZ`]) through the I/O APIC as an
//! NMI to every CPU that is up, as early Linux did ("IO-APIC watchdog").
//! The module guard's NMI hook ([`crate::modules::guard`]) cuts off a
//! callback found still running after
//! [`WATCHDOG_MS`](crate::modules::guard::WATCHDOG_MS).
//!
//! [`arm`] runs once the CPUs are up: it finds the I/O APIC input of IRQ 0
//! in the MADT (its interrupt source override, normally GSI 2), checks
//! that every CPU among the first eight answers to its logical APIC id
//! (flat model: one bit each), programs the input as an NMI to those CPUs,
//! has the boot CPU forward the NMIs it takes to the later CPUs by NMI IPI
//! (see [`nmi`]: to each only while a callback there is due, and while
//! arming), and then waits until each running CPU has taken one. If any
//! step fails the input is masked again, the kernel says why, and callbacks
//! run unwatched. `nmi_watchdog=0` on the command line leaves it off.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::percpu::{self, MAX_CPUS};
use crate::arch::{apic, ioapic, nmi, smp as arch_smp, tsc};
use smpboot::madt::Madt;

/// How long [`arm`] waits for the first NMI on every CPU.
const FIRST_NMI_MS: u64 = 50;

/// What [`arm`] did.
struct Armed {
    gsi: u32,
    /// Every CPU it reaches.
    cpus: Vec<usize>,
    /// Those the boot CPU forwards it to.
    forwarded: Vec<usize>,
}

static STATUS: spin::Once<Result<Armed, String>> = spin::Once::new();

/// Why the watchdog is not armed (`None` once it is): the reason it could
/// not be, or that arming has not run yet.
pub fn not_armed() -> Option<&'static str> {
    match STATUS.get() {
        Some(Ok(_)) => None,
        Some(Err(why)) => Some(why.as_str()),
        None => Some("not armed yet"),
    }
}

/// Arms the watchdog (see the module documentation); logs the outcome.
pub fn arm() {
    let status = STATUS.call_once(|| {
        match crate::cmdline::get("nmi_watchdog") {
            Some("0") => return Err(String::from("nmi_watchdog=0 on the command line")),
            None | Some("1") => {}
            Some(other) => log::warn!("watchdog: nmi_watchdog={other} is not 0 or 1; arming it"),
        }
        try_arm()
    });
    match status {
        Ok(a) => {
            let forwarded = if a.forwarded.is_empty() {
                String::new()
            } else {
                format!(
                    " (forwarded by CPU 0 to CPUs {:?} while a callback there is due)",
                    a.forwarded
                )
            };
            log::info!(
                "watchdog: PIT (ISA IRQ 0, GSI {}) delivered as NMI to CPUs {:?}{forwarded}; module callbacks running {} ms are cut off",
                a.gsi,
                a.cpus,
                crate::modules::guard::WATCHDOG_MS
            );
        }
        Err(why) => log::warn!(
            "watchdog: not armed: {why}; a module callback spinning with interrupts off hangs its CPU"
        ),
    }
}

fn try_arm() -> Result<Armed, String> {
    let (phys, bytes) = crate::smp::find_madt()?;
    let madt = Madt::parse(bytes).map_err(|e| format!("MADT at {phys:#x} refused: {e:?}"))?;
    let route = madt.isa_route(0);
    let input = madt
        .ioapic_for(route.gsi, |address| match ioapic::map(u64::from(address)) {
            Ok(()) => smpboot::ioapic::inputs(ioapic::version()),
            Err(e) => {
                log::warn!("watchdog: I/O APIC at {address:#x}: {e}");
                0
            }
        })
        .ok_or_else(|| format!("no I/O APIC in the MADT has GSI {}", route.gsi))?;
    let (mask, mut cpus) = logical_ids()?;
    // The CPUs past the flat model's eight: the boot CPU (bit 0 of the
    // mask, always up) passes an NMI on to one of them while a callback
    // there is due ([`percpu::PerCpu::watch_due`]). No module code runs yet,
    // so arming marks them all due at once, and unmarks them once each has
    // taken one: that checks the whole forwarding path.
    let forwarded: Vec<usize> = percpu::online()
        .filter(|c| nmi::is_forwarded(c.index))
        .map(|c| c.index)
        .collect();
    cpus.extend(&forwarded);
    let due = |when: u64| {
        for c in forwarded.iter().filter_map(|&i| percpu::cpu(i)) {
            c.watch_due.store(when, Ordering::SeqCst);
        }
    };
    let entry = smpboot::ioapic::nmi_to(mask, route.active_low, route.level);
    due(1);
    nmi::arm();
    let before: Vec<u64> = cpus.iter().map(|&i| nmis(i)).collect();
    ioapic::set_entry(input.pin, entry);
    let fail = |why: String| {
        ioapic::set_entry(input.pin, entry | smpboot::ioapic::MASKED);
        due(0);
        nmi::disarm();
        Err(format!(
            "I/O APIC {} at {:#x} input {}: {why}",
            input.id, input.address, input.pin
        ))
    };
    let read = ioapic::entry(input.pin);
    // Bits 12 (delivery status) and 14 (remote IRR) are the chip's.
    if read & !(1 << 12 | 1 << 14) != entry {
        return fail(format!("entry reads {read:#x}, {entry:#x} was written"));
    }
    let deadline = tsc::read() + tsc::frequency_hz() * FIRST_NMI_MS / 1000;
    let silent = || {
        cpus.iter()
            .zip(&before)
            .filter(|&(&i, &b)| nmis(i) == b)
            .map(|(&i, _)| i)
            .collect::<Vec<_>>()
    };
    while !silent().is_empty() && tsc::read() < deadline {
        core::hint::spin_loop();
    }
    due(0);
    let missing = silent();
    if !missing.is_empty() {
        return fail(format!(
            "CPUs {missing:?} took no NMI within {FIRST_NMI_MS} ms"
        ));
    }
    Ok(Armed {
        gsi: route.gsi,
        cpus,
        forwarded,
    })
}

/// The flat logical destination of every running CPU that has one, read
/// back from each CPU's own local APIC.
fn logical_ids() -> Result<(u8, Vec<usize>), String> {
    let seen: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];
    arch_smp::call_on_all(&|| {
        seen[percpu::index()].store(u64::from(apic::logical_id()), Ordering::SeqCst);
    })
    .map_err(|e| format!("cannot ask every CPU for its logical APIC id: {e}"))?;
    let mut mask = 0u8;
    let mut cpus = Vec::new();
    for c in percpu::online() {
        let Some(ldr) = smpboot::ioapic::flat_ldr(c.index) else {
            continue;
        };
        let want = (ldr >> 24) as u8;
        let got = seen[c.index].load(Ordering::SeqCst);
        if got != u64::from(want) {
            return Err(format!(
                "CPU {} has logical APIC id {got:#x}, not {want:#x}",
                c.index
            ));
        }
        mask |= want;
        cpus.push(c.index);
    }
    Ok((mask, cpus))
}

fn nmis(cpu: usize) -> u64 {
    percpu::cpu(cpu).map_or(0, |c| c.nmis.load(Ordering::Relaxed))
}

/// The watchdog's part of the report.
pub fn report() -> report::Watchdog {
    let nmis = percpu::online()
        .map(|c| (format!("{}", c.index), nmis(c.index)))
        .collect();
    let cut_off = crate::modules::guard::watchdog_cut_offs();
    match STATUS.get() {
        Some(Ok(a)) => report::Watchdog {
            armed: true,
            reason: None,
            gsi: u64::from(a.gsi),
            cpus: a.cpus.iter().map(|&i| i as u64).collect(),
            forwarded: a.forwarded.iter().map(|&i| i as u64).collect(),
            forward_failures: nmi::unsent() as u64,
            nmis,
            cut_off,
        },
        Some(Err(why)) => report::Watchdog {
            reason: Some(why.clone()),
            nmis,
            cut_off,
            ..Default::default()
        },
        None => report::Watchdog {
            reason: Some(String::from("not set up yet")),
            nmis,
            cut_off,
            ..Default::default()
        },
    }
}
