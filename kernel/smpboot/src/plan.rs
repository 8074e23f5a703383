//! Which of the CPUs the MADT lists the kernel starts.
//!
//! Every entry marked enabled is *present*. The boot CPU is the one whose
//! APIC id the kernel reads from its own local APIC; every other present CPU
//! is started, unless it cannot be addressed through the xAPIC (id 255 and
//! up), repeats an id already listed, or lies beyond the kernel's CPU limit.
//! A command-line option can name one CPU whose STARTUP IPIs are not sent:
//! it stays in its wait-for-SIPI state and must then be reported as not
//! answering.

use crate::madt::Cpu;
use alloc::vec::Vec;

/// Highest APIC id an xAPIC destination field can name (255 broadcasts).
pub const MAX_XAPIC_ID: u32 = 254;

/// Why a listed CPU is not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Left {
    /// Not marked enabled (absent or hot-pluggable); not present.
    Disabled,
    /// Its APIC id was listed before; not counted again.
    Duplicate,
    /// Its id needs x2APIC mode, which the kernel does not use.
    NeedsX2apic,
    /// More present CPUs than the kernel supports.
    Limit,
}

impl Left {
    /// Short reason for the boot log.
    pub fn reason(self) -> &'static str {
        match self {
            Left::Disabled => "not enabled in the MADT",
            Left::Duplicate => "APIC id listed twice",
            Left::NeedsX2apic => "APIC id needs x2APIC mode",
            Left::Limit => "beyond the kernel's CPU limit",
        }
    }

    /// Whether a CPU left for this reason counts as present.
    pub fn present(self) -> bool {
        matches!(self, Left::NeedsX2apic | Left::Limit)
    }
}

/// What the kernel does with one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The CPU the kernel runs on (index 0).
    Boot,
    /// Start it: INIT, then (unless `sipi` is false) two STARTUP IPIs. It
    /// gets CPU index `index` if it answers.
    Start {
        /// Index the CPU gets.
        index: usize,
        /// Whether the STARTUP IPIs are sent.
        sipi: bool,
    },
    /// Leave it alone.
    Leave(Left),
}

/// One CPU and what to do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The MADT entry (synthesised for a boot CPU the MADT omits).
    pub cpu: Cpu,
    /// What to do.
    pub action: Action,
}

/// Plans the bring-up of `cpus` (MADT order) from the boot CPU with APIC id
/// `bsp`: at most `max_cpus` CPUs including the boot CPU, the STARTUP IPIs
/// of `skip_sipi` (an APIC id) left out. The boot CPU comes first; a boot
/// CPU missing from the list is added as present.
pub fn plan(
    cpus: impl IntoIterator<Item = Cpu>,
    bsp: u32,
    max_cpus: usize,
    skip_sipi: Option<u32>,
) -> Vec<Planned> {
    let mut out: Vec<Planned> = Vec::new();
    let mut listed: Vec<u32> = Vec::new();
    let mut next = 1;
    let mut boot = Planned {
        cpu: Cpu {
            uid: 0,
            apic_id: bsp,
            enabled: true,
            online_capable: false,
            x2apic: false,
        },
        action: Action::Boot,
    };
    for cpu in cpus {
        if cpu.enabled && cpu.apic_id == bsp && !listed.contains(&bsp) {
            boot.cpu = cpu;
            listed.push(bsp);
            continue;
        }
        let action = if !cpu.enabled {
            Action::Leave(Left::Disabled)
        } else if listed.contains(&cpu.apic_id) {
            Action::Leave(Left::Duplicate)
        } else if cpu.apic_id > MAX_XAPIC_ID {
            listed.push(cpu.apic_id);
            Action::Leave(Left::NeedsX2apic)
        } else if next >= max_cpus {
            listed.push(cpu.apic_id);
            Action::Leave(Left::Limit)
        } else {
            listed.push(cpu.apic_id);
            next += 1;
            Action::Start {
                index: next - 1,
                sipi: skip_sipi != Some(cpu.apic_id),
            }
        };
        out.push(Planned { cpu, action });
    }
    out.insert(0, boot);
    out
}

/// Number of present CPUs in a plan (the boot CPU, those started and those
/// left for lack of support).
pub fn present(plan: &[Planned]) -> usize {
    plan.iter()
        .filter(|p| match p.action {
            Action::Boot | Action::Start { .. } => true,
            Action::Leave(l) => l.present(),
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(apic_id: u32, enabled: bool) -> Cpu {
        Cpu {
            uid: apic_id,
            apic_id,
            enabled,
            online_capable: false,
            x2apic: apic_id > 254,
        }
    }

    fn actions(p: &[Planned]) -> Vec<(u32, Action)> {
        p.iter().map(|p| (p.cpu.apic_id, p.action)).collect()
    }

    #[test]
    fn every_enabled_cpu_but_the_boot_cpu_is_started() {
        let p = plan(
            [cpu(0, true), cpu(1, true), cpu(2, false), cpu(3, true)],
            0,
            32,
            None,
        );
        assert_eq!(
            actions(&p),
            [
                (0, Action::Boot),
                (
                    1,
                    Action::Start {
                        index: 1,
                        sipi: true
                    }
                ),
                (2, Action::Leave(Left::Disabled)),
                (
                    3,
                    Action::Start {
                        index: 2,
                        sipi: true
                    }
                ),
            ]
        );
        assert_eq!(present(&p), 3);
    }

    #[test]
    fn the_boot_cpu_comes_first_wherever_it_is_listed() {
        let p = plan([cpu(4, true), cpu(7, true)], 7, 32, None);
        assert_eq!(p[0].action, Action::Boot);
        assert_eq!(p[0].cpu.apic_id, 7);
        assert_eq!(
            p[1].action,
            Action::Start {
                index: 1,
                sipi: true
            }
        );
        // A boot CPU the table leaves out is still present.
        let p = plan([cpu(1, true)], 0, 32, None);
        assert_eq!(actions(&p)[0], (0, Action::Boot));
        assert_eq!(present(&p), 2);
    }

    #[test]
    fn limits_duplicates_and_x2apic_ids() {
        let p = plan(
            [
                cpu(0, true),
                cpu(1, true),
                cpu(1, true),
                cpu(300, true),
                cpu(2, true),
                cpu(3, true),
            ],
            0,
            3,
            None,
        );
        let a: Vec<Action> = p.iter().map(|p| p.action).collect();
        assert_eq!(
            a,
            [
                Action::Boot,
                Action::Start {
                    index: 1,
                    sipi: true
                },
                Action::Leave(Left::Duplicate),
                Action::Leave(Left::NeedsX2apic),
                Action::Start {
                    index: 2,
                    sipi: true
                },
                Action::Leave(Left::Limit),
            ]
        );
        assert_eq!(present(&p), 5, "x2APIC and over-limit CPUs are present");
    }

    #[test]
    fn skip_sipi_names_one_cpu() {
        let p = plan([cpu(0, true), cpu(1, true), cpu(2, true)], 0, 32, Some(2));
        assert_eq!(
            p[2].action,
            Action::Start {
                index: 2,
                sipi: false
            }
        );
        assert_eq!(
            p[1].action,
            Action::Start {
                index: 1,
                sipi: true
            }
        );
        // Naming the boot CPU changes nothing.
        let p = plan([cpu(0, true), cpu(1, true)], 0, 32, Some(0));
        assert_eq!(p[0].action, Action::Boot);
    }
}
