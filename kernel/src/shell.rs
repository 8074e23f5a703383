//! A small line-editing shell on the console (`shell` on the command
//! line), reading input through the console's receive path ([`crate::rx`]:
//! COM1's receive interrupt).
//!
//! Editing: printable characters are echoed, Backspace/Delete erase one,
//! Ctrl-U erases the line, Ctrl-C abandons it, escape sequences (arrow
//! keys) are ignored; Return (CR, LF or CR LF) runs it. Commands:
//!
//! | command | does |
//! |---|---|
//! | `help` | lists the commands |
//! | `lsmod` | kept modules (built-in and loaded): class addresses and sizes, dependencies |
//! | `report` | the reclaimed-memory table and `REPORT` line, as now |
//! | `maps` | mappings of each class (4 KiB and 2 MiB), fresh pages included |
//! | `pools` | free and used pool bytes per class |
//! | `free` | free frames and heap |
//! | `initrd` | the objects in the initrd |
//! | `insmod NAME` | loads object NAME from the initrd |
//! | `rmmod NAME` | unloads module NAME |
//! | `stale NAME` | calls the old probe address of unloaded or expunged module NAME (a test aid: it traps) |
//! | `irq LINE CPU` | runs IRQ LINE's module handler on CPU CPU as if the line fired there (a test and debugging aid); refused while the NMI watchdog is not armed |
//! | `exit` | leaves QEMU with the success status |
//!
//! An unknown command or a bad argument prints one `error:` line and the
//! shell goes on.

use crate::loader::{self, View};
use crate::mm::paging::{self, PageSize};
use crate::mm::{frames, heap};
use crate::{kprint, kprintln, rx};
use alloc::string::String;
use alloc::vec::Vec;
use modtable::Class;

/// The prompt, printed before each line is read.
pub const PROMPT: &str = "plk> ";
/// Longest line kept.
const MAX_LINE: usize = 200;

const COMMANDS: &[(&str, &str)] = &[
    ("help", "list the commands"),
    (
        "lsmod",
        "kept modules: class addresses and sizes, built-in or loaded",
    ),
    ("report", "the reclaimed-memory table and REPORT line"),
    ("maps", "mappings per class, 4 KiB and 2 MiB"),
    ("pools", "free and used pool bytes per class"),
    ("free", "free frames and heap"),
    ("initrd", "objects in the initrd"),
    ("insmod NAME", "load object NAME from the initrd"),
    ("rmmod NAME", "unload module NAME"),
    (
        "stale NAME",
        "call the old probe address of unloaded module NAME (traps)",
    ),
    (
        "irq LINE CPU",
        "run IRQ LINE's module handler on CPU CPU, as if the line fired there",
    ),
    ("exit", "leave QEMU with the success status"),
];

/// Line-reading state kept between lines.
struct Shell {
    /// The last byte ended a line with CR (a following LF is the same end).
    after_cr: bool,
}

enum Key {
    Byte(u8),
    End,
    Cancel,
}

impl Shell {
    fn key(&mut self) -> Key {
        let mut escape = 0;
        loop {
            let b = rx::read_byte();
            let after_cr = core::mem::replace(&mut self.after_cr, false);
            match (escape, b) {
                (_, 0x1b) => escape = 1,
                (1, b'[' | b'O') => escape = 2,
                (2, 0x30..=0x3f) => {}
                (1 | 2, _) => escape = 0,
                (_, b'\n') if after_cr => {}
                (_, b'\r') => {
                    self.after_cr = true;
                    return Key::End;
                }
                (_, b'\n') => return Key::End,
                (_, 0x03) => return Key::Cancel,
                _ => return Key::Byte(b),
            }
        }
    }

    fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        loop {
            match self.key() {
                Key::End => {
                    kprintln!();
                    return Some(line);
                }
                Key::Cancel => {
                    kprintln!("^C");
                    return None;
                }
                Key::Byte(0x7f | 0x08) => {
                    if line.pop().is_some() {
                        kprint!("\x08 \x08");
                    }
                }
                Key::Byte(0x15) => {
                    for _ in 0..line.len() {
                        kprint!("\x08 \x08");
                    }
                    line.clear();
                }
                Key::Byte(b @ 0x20..=0x7e) if line.len() < MAX_LINE => {
                    line.push(b as char);
                    kprint!("{}", b as char);
                }
                Key::Byte(_) => {}
            }
        }
    }
}

/// Runs the shell until `exit`.
pub fn run() -> ! {
    if let Err(e) = rx::enable() {
        log::error!("shell: cannot take COM1's receive interrupt: {e:?}");
        crate::exit::failure();
    }
    kprintln!(
        "shell: input through COM1's receive interrupt (IRQ {}); type `help`",
        rx::IRQ
    );
    let mut shell = Shell { after_cr: false };
    loop {
        kprint!("{PROMPT}");
        let Some(line) = shell.read_line() else {
            continue;
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some((&cmd, args)) = words.split_first() {
            execute(cmd, args);
        }
        rx::arm();
    }
}

fn valid_arg(a: &str) -> bool {
    a.len() <= 64
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn execute(cmd: &str, args: &[&str]) {
    let Some(&(usage, _)) = COMMANDS
        .iter()
        .find(|(u, _)| u.split(' ').next() == Some(cmd))
    else {
        kprintln!("error: unknown command `{cmd}` (type `help`)");
        return;
    };
    let wanted = usage.split(' ').count() - 1;
    if args.len() != wanted {
        kprintln!("error: usage: {usage}");
        return;
    }
    let mut names = usage
        .split(' ')
        .skip(1)
        .zip(args)
        .filter(|(u, _)| *u == "NAME");
    if let Some((_, a)) = names.find(|(_, a)| !valid_arg(a)) {
        kprintln!("error: {cmd}: bad name `{a}` (letters, digits, `_`, `.`, `-`)");
        return;
    }
    let arg = args.first().copied().unwrap_or("");
    match cmd {
        "help" => {
            for (u, h) in COMMANDS {
                kprintln!("  {u:<14} {h}");
            }
        }
        "lsmod" => view(lsmod),
        "report" => loader::print_report(),
        "maps" => view(maps),
        "pools" => view(pools),
        "free" => free(),
        "initrd" => initrd(),
        "insmod" => match loader::insmod(arg) {
            Ok(()) => kprintln!("insmod {arg}: done"),
            Err(e) => kprintln!("error: insmod {arg}: {e}"),
        },
        "rmmod" => match loader::rmmod(arg) {
            Ok(r) => kprintln!(
                "rmmod {arg}: unloaded ({} IRQ handlers, {} port ranges, {} allocations released)",
                r.irqs,
                r.ports,
                r.allocs
            ),
            Err(e) => kprintln!("error: rmmod {arg}: {e}"),
        },
        "stale" => {
            if let Err(e) = loader::stale_call(arg) {
                kprintln!("error: stale {arg}: {e}");
            }
        }
        "irq" => inject(args[0], args[1]),
        "exit" => {
            let s = rx::stats();
            kprintln!(
                "shell: exit: {} bytes received in {} COM1 receive interrupts ({} dropped)",
                s.bytes,
                s.irqs,
                s.dropped
            );
            crate::exit::success();
        }
        _ => kprintln!("error: unknown command `{cmd}` (type `help`)"),
    }
}

/// `irq LINE CPU`: the line's module handler, run on that CPU.
fn inject(line: &str, cpu: &str) {
    use crate::kapi::irq::Injected;
    let Ok(l) = line.parse::<u32>() else {
        kprintln!("error: irq: LINE `{line}` is not a number (0-15)");
        return;
    };
    let Ok(c) = cpu.parse::<usize>() else {
        kprintln!("error: irq: CPU `{cpu}` is not a number");
        return;
    };
    match crate::kapi::irq::inject(l, c) {
        Ok((module, Injected::Returned(1))) => {
            kprintln!("irq {l}: {module}'s handler ran on CPU {c} and returned")
        }
        Ok((module, Injected::Returned(n))) => kprintln!(
            "irq {l}: {module}'s handler ran on CPU {c} and returned; it ran {n} times there: the line fired on another CPU while it ran"
        ),
        Ok((module, Injected::CutShort)) => kprintln!(
            "irq {l}: {module}'s handler on CPU {c} was cut short (see the log); IRQ {l} disabled"
        ),
        Ok((module, Injected::Pending)) => kprintln!(
            "irq {l}: {module}'s handler was running on another CPU, which runs it once more"
        ),
        Err(e) => kprintln!("error: irq {l} on CPU {c}: {e}"),
    }
}

fn view(f: fn(&View<'_>)) {
    if loader::with_view(f).is_none() {
        kprintln!("error: the module phase has not finished");
    }
}

fn lsmod(v: &View<'_>) {
    kprintln!(
        "{:<16} {:<8} {:<28} {:<28} {:<28} {:<16} used by",
        "module",
        "origin",
        "text",
        "rodata",
        "data",
        "depends"
    );
    for (i, m) in v.mods.iter().enumerate().filter(|(_, m)| m.kept) {
        let cls = |c: Class| {
            let size = m.placement.size[c];
            if size == 0 {
                String::from("-")
            } else {
                alloc::format!("{:#x} +{size}", m.base[c])
            }
        };
        let deps: Vec<&str> = m.deps.iter().map(|&d| v.mods[d].name).collect();
        kprintln!(
            "{:<16} {:<8} {:<28} {:<28} {:<28} {:<16} {}",
            m.name,
            if m.runtime.is_some() {
                "loaded"
            } else {
                "builtin"
            },
            cls(Class::Text),
            cls(Class::Rodata),
            cls(Class::Data),
            if deps.is_empty() {
                String::from("-")
            } else {
                deps.join(",")
            },
            v.dependents(i).join(",")
        );
    }
}

fn maps(v: &View<'_>) {
    for c in Class::ALL {
        let (mut n4k, mut n2m) = (0, 0);
        for (s, e) in v.mapped(c) {
            // Runs of same-size, same-permission, physically contiguous pages.
            let mut at = s;
            while at < e {
                let Some((phys, flags, size)) = paging::translate(at) else {
                    kprintln!("{:<7} {at:#x}: not mapped", c.name());
                    at += 4096;
                    continue;
                };
                let step = size.bytes();
                let mut end = (at & !(step - 1)) + step;
                let mut count = 1;
                while end < e {
                    match paging::translate(end) {
                        Some((p, f, z)) if z == size && f == flags && p == phys + (end - at) => {
                            end += step;
                            count += 1;
                        }
                        _ => break,
                    }
                }
                let label = match size {
                    PageSize::Size4K => {
                        n4k += count;
                        "4K"
                    }
                    PageSize::Size2M => {
                        n2m += count;
                        "2M"
                    }
                    PageSize::Size1G => "1G",
                };
                kprintln!(
                    "{:<7} {at:#x}-{end:#x} {count:>4} x {label} {flags:?}  physical {phys:#x}",
                    c.name()
                );
                at = end;
            }
        }
        kprintln!("{:<7} total: {n4k} x 4K, {n2m} x 2M", c.name());
    }
    kprintln!(
        "W+X pages {}, W^X alias frames {}",
        paging::count_wx_pages(),
        paging::wx_alias_frames()
    );
}

fn pools(v: &View<'_>) {
    kprintln!(
        "{:<7} {:>10} {:>10} {:>10} {:>10}  ranges",
        "pool",
        "size",
        "used",
        "free",
        "largest"
    );
    for c in Class::ALL {
        let f = v.pool(c);
        let p = &v.placer.pools[c];
        let mut ranges: Vec<String> = p
            .free_ranges()
            .iter()
            .take(4)
            .map(|(s, e)| alloc::format!("{s:#x}-{e:#x}"))
            .collect();
        if p.free_ranges().len() > 4 {
            ranges.push(alloc::format!("+{} more", p.free_ranges().len() - 4));
        }
        let mut note = ranges.join(" ");
        if c == Class::Data
            && let Some((s, e, used, free)) = heap::arena()
        {
            note = alloc::format!("heap tail {s:#x}-{e:#x} ({used} used, {free} free) {note}");
        }
        kprintln!(
            "{:<7} {:>10} {:>10} {:>10} {:>10}  {}",
            c.name(),
            f.size,
            f.used,
            f.free,
            p.largest_free(),
            note
        );
    }
    for f in &v.placer.fresh {
        kprintln!(
            "fresh   {} {:#x}-{:#x} physical {:#x} mapped {:?}",
            f.class.name(),
            f.va,
            f.va + f.len,
            f.phys,
            loader::place::class_flags(f.class)
        );
    }
}

fn free() {
    let (ff, tf) = (frames::free_frames(), frames::total_frames());
    kprintln!(
        "frames: {ff} free of {tf} ({} MiB free)",
        (ff * frames::FRAME_SIZE) >> 20
    );
    kprintln!(
        "heap: {} bytes used, {} bytes free",
        heap::used_bytes(),
        heap::free_bytes()
    );
    if let Some((s, e, used, free)) = heap::arena() {
        kprintln!("heap tail (data range) {s:#x}-{e:#x}: {used} bytes used, {free} free");
    }
}

fn initrd() {
    match crate::initrd::archive() {
        Ok(a) => {
            for e in a.entries() {
                kprintln!("  {:<24} {:>9} bytes", e.name, e.data.len());
            }
        }
        Err(e) => kprintln!("error: initrd: {e}"),
    }
}
