//! The probe test and the transmit path, over any [`PortIo`].

use crate::regs::*;
use module_api::ProbeError;
use module_api::ports::PortIo;
use module_api::time::{Clock, wait_until};

/// Scratch-register patterns.
const SCRATCH: [u8; 2] = [0x5a, 0xa5];
/// Loopback data byte.
const LOOP_BYTE: u8 = 0xae;
/// How long to wait for the transmitter, in microseconds.
const TX_TIMEOUT_US: u64 = 10_000;

/// Checks that a 16550 answers at `io`: scratch register, loopback status
/// lines and a looped-back data byte. Leaves the UART in loopback off.
pub fn check_port(io: &impl PortIo, clock: &impl Clock) -> Result<(), ProbeError> {
    for pat in SCRATCH {
        io.write8(SCR, pat);
        let got = io.read8(SCR);
        if got != pat {
            return Err(ProbeError::no_device(format_args!(
                "scratch register did not hold {pat:#04x} (read {got:#04x})"
            )));
        }
    }
    // Loopback with RTS and OUT1 up, DTR and OUT2 down: the modem status
    // lines must reflect them (CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2).
    io.write8(IER, 0);
    program_8n1(io);
    io.write8(MCR, MCR_LOOP | MCR_RTS | MCR_OUT1);
    let msr = io.read8(MSR) & 0xf0;
    if msr != 0x50 {
        io.write8(MCR, 0);
        return Err(ProbeError::io(format_args!(
            "loopback modem status {msr:#04x}, expected 0x50"
        )));
    }
    io.write8(MCR, MCR_LOOP | MCR_DTR | MCR_OUT2);
    let msr = io.read8(MSR) & 0xf0;
    if msr != 0xa0 {
        io.write8(MCR, 0);
        return Err(ProbeError::io(format_args!(
            "loopback modem status {msr:#04x}, expected 0xa0"
        )));
    }
    // Drain stale input, then loop one byte through.
    for _ in 0..32 {
        if io.read8(LSR) & LSR_DR == 0 {
            break;
        }
        io.read8(DATA);
    }
    io.write8(DATA, LOOP_BYTE);
    let ready = wait_until(clock, TX_TIMEOUT_US, 10, || io.read8(LSR) & LSR_DR != 0);
    let got = io.read8(DATA);
    io.write8(MCR, 0);
    if !ready {
        return Err(ProbeError::timeout(format_args!(
            "loopback byte {LOOP_BYTE:#04x} never arrived"
        )));
    }
    if got != LOOP_BYTE {
        return Err(ProbeError::io(format_args!(
            "loopback returned {got:#04x}, sent {LOOP_BYTE:#04x}"
        )));
    }
    Ok(())
}

fn program_8n1(io: &impl PortIo) {
    io.write8(LCR, LCR_DLAB);
    io.write8(DATA, 1); // divisor 1: 115200 baud
    io.write8(IER, 0);
    io.write8(LCR, LCR_8N1);
    io.write8(FCR, FCR_ENABLE_CLEAR);
}

/// A probed UART.
#[derive(Debug)]
pub struct Uart<P> {
    io: P,
}

impl<P: PortIo> Uart<P> {
    /// Programs 115200 8N1, FIFOs on, interrupts off, DTR/RTS/OUT2 up.
    pub fn init(io: P) -> Self {
        io.write8(IER, 0);
        program_8n1(&io);
        io.write8(MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
        Uart { io }
    }

    /// Sends one byte, waiting (bounded) for room in the transmitter.
    pub fn write_byte(&self, b: u8, clock: &impl Clock) {
        // On timeout send anyway: losing a byte beats hanging the console.
        wait_until(clock, TX_TIMEOUT_US, 1, || {
            self.io.read8(LSR) & LSR_THRE != 0
        });
        self.io.write8(DATA, b);
    }

    /// Sends `bytes`, turning `\n` into `\r\n`.
    pub fn write_bytes(&self, bytes: &[u8], clock: &impl Clock) {
        for &b in bytes {
            if b == b'\n' {
                self.write_byte(b'\r', clock);
            }
            self.write_byte(b, clock);
        }
    }

    /// Waits until the transmitter is empty; the last LSR value on timeout.
    pub fn wait_drained(&self, clock: &impl Clock) -> Result<(), u8> {
        let empty = LSR_THRE | LSR_TEMT;
        if wait_until(clock, TX_TIMEOUT_US, 10, || {
            self.io.read8(LSR) & empty == empty
        }) {
            Ok(())
        } else {
            Err(self.io.read8(LSR))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use module_api::ProbeErrorKind;
    use module_api::time::FakeClock;
    use std::vec::Vec;

    /// A register-level model of the parts of a 16550 the driver uses.
    #[derive(Default)]
    struct FakeUart {
        s: RefCell<State>,
    }

    #[derive(Default)]
    struct State {
        absent: bool,
        broken_loop: bool,
        scr: u8,
        lcr: u8,
        mcr: u8,
        rx: Option<u8>,
        sent: Vec<u8>,
    }

    impl PortIo for FakeUart {
        fn read8(&self, off: u16) -> u8 {
            let mut s = self.s.borrow_mut();
            if s.absent {
                return 0xff;
            }
            match off {
                DATA if s.lcr & LCR_DLAB == 0 => s.rx.take().unwrap_or(0),
                LSR => LSR_THRE | LSR_TEMT | u8::from(s.rx.is_some()),
                MSR if s.mcr & MCR_LOOP != 0 && !s.broken_loop => {
                    let m = s.mcr;
                    (m & MCR_RTS) << 3
                        | (m & MCR_DTR) << 5
                        | (m & MCR_OUT1) << 4
                        | (m & MCR_OUT2) << 4
                }
                MCR => s.mcr,
                LCR => s.lcr,
                SCR => s.scr,
                _ => 0,
            }
        }
        fn write8(&self, off: u16, v: u8) {
            let mut s = self.s.borrow_mut();
            match off {
                DATA if s.lcr & LCR_DLAB == 0 => {
                    if s.mcr & MCR_LOOP != 0 {
                        s.rx = Some(v);
                    } else {
                        s.sent.push(v);
                    }
                }
                LCR => s.lcr = v,
                MCR => s.mcr = v,
                SCR => s.scr = v,
                _ => {}
            }
        }
        fn read16(&self, _: u16) -> u16 {
            unreachable!()
        }
        fn read32(&self, _: u16) -> u32 {
            unreachable!()
        }
        fn write16(&self, _: u16, _: u16) {
            unreachable!()
        }
        fn write32(&self, _: u16, _: u32) {
            unreachable!()
        }
    }

    #[test]
    fn present_uart_passes_and_transmits() {
        let u = FakeUart::default();
        let c = FakeClock::default();
        check_port(&u, &c).unwrap();
        let uart = Uart::init(u);
        uart.write_bytes(b"hi\n", &c);
        assert_eq!(uart.wait_drained(&c), Ok(()));
        assert_eq!(uart.io.s.borrow().sent, b"hi\r\n");
        assert_eq!(uart.io.s.borrow().mcr, MCR_DTR | MCR_RTS | MCR_OUT2);
    }

    #[test]
    fn absent_port_fails_scratch() {
        let u = FakeUart::default();
        u.s.borrow_mut().absent = true;
        let e = check_port(&u, &FakeClock::default()).unwrap_err();
        assert_eq!(e.kind(), ProbeErrorKind::NoDevice);
        assert_eq!(
            e.message(),
            "scratch register did not hold 0x5a (read 0xff)"
        );
    }

    #[test]
    fn broken_loopback_fails() {
        let u = FakeUart::default();
        u.s.borrow_mut().broken_loop = true;
        let e = check_port(&u, &FakeClock::default()).unwrap_err();
        assert_eq!(e.kind(), ProbeErrorKind::Io);
        assert_eq!(e.message(), "loopback modem status 0x00, expected 0x50");
    }
}
