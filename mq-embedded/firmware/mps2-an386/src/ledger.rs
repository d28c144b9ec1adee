//! The mq application's bookkeeping, apart from the network so the host tests
//! it: the commands it has executed, and the telemetry payloads it publishes.
//!
//! A command is a message on `dev.<id>.cmd` whose payload is its number in
//! decimal (`17`); executing it means recording the number. Telemetry message
//! `n` is `t<n>`, padded with `.` to the configured size; `cargo xtask qemu`
//! reads the numbers back from the broker.

use core::fmt;

use crate::config::{MAX_COMMANDS, MAX_PAYLOAD};

/// A command the application cannot execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// The payload is not a decimal number.
    NotANumber,
    /// A number outside `1..=expected`.
    OutOfRange { number: u32, expected: u32 },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NotANumber => f.write_str("the payload is not a decimal number"),
            CommandError::OutOfRange { number, expected } => {
                write!(f, "command {number} is not in 1..={expected}")
            }
        }
    }
}

/// Whether a command was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executed {
    /// First time: executed now.
    New(u32),
    /// Executed before (a redelivery, which at-least-once allows).
    Again(u32),
}

/// Which of the commands `1..=expected` have been executed, one bit each.
#[derive(Debug, Clone)]
pub struct Commands {
    bits: [u32; MAX_COMMANDS as usize / 32],
    expected: u32,
    executed: u32,
    again: u32,
}

impl Commands {
    /// Expecting the commands `1..=expected` (at most [`MAX_COMMANDS`]).
    pub const fn new(expected: u32) -> Commands {
        Commands {
            bits: [0; MAX_COMMANDS as usize / 32],
            expected: Self::bounded(expected),
            executed: 0,
            again: 0,
        }
    }

    const fn bounded(expected: u32) -> u32 {
        if expected > MAX_COMMANDS {
            MAX_COMMANDS
        } else {
            expected
        }
    }

    /// A fresh ledger (`new(0)`, none expected, none executed) now expecting
    /// `1..=expected`: what `new(expected)` builds, written in place without
    /// storing the zeros that are there (the applications' device, a
    /// static of zeros, sets its ledger this way).
    pub fn expect(&mut self, expected: u32) {
        self.expected = Self::bounded(expected);
    }

    /// Executes the command in `payload`.
    pub fn execute(&mut self, payload: &[u8]) -> Result<Executed, CommandError> {
        let number = parse_number(payload).ok_or(CommandError::NotANumber)?;
        if number == 0 || number > self.expected {
            return Err(CommandError::OutOfRange {
                number,
                expected: self.expected,
            });
        }
        let (word, bit) = ((number - 1) as usize / 32, (number - 1) % 32);
        if self.bits[word] & (1 << bit) != 0 {
            self.again += 1;
            return Ok(Executed::Again(number));
        }
        self.bits[word] |= 1 << bit;
        self.executed += 1;
        Ok(Executed::New(number))
    }

    /// Distinct commands executed.
    pub fn executed(&self) -> u32 {
        self.executed
    }

    /// Deliveries of commands already executed.
    pub fn again(&self) -> u32 {
        self.again
    }

    pub fn expected(&self) -> u32 {
        self.expected
    }

    /// Every expected command executed.
    pub fn done(&self) -> bool {
        self.executed == self.expected
    }

    /// The lowest command not executed yet.
    pub fn first_missing(&self) -> Option<u32> {
        (1..=self.expected).find(|&n| {
            let (word, bit) = ((n - 1) as usize / 32, (n - 1) % 32);
            self.bits[word] & (1 << bit) == 0
        })
    }
}

/// A decimal `u32` with nothing around it.
fn parse_number(payload: &[u8]) -> Option<u32> {
    if payload.is_empty() || payload.len() > 10 {
        return None;
    }
    payload.iter().try_fold(0u32, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|&d| d <= 9)?;
        n.checked_mul(10)?.checked_add(u32::from(digit))
    })
}

/// Telemetry message `n`: `t<n>`, padded with `.` to `size` bytes (at most
/// [`MAX_PAYLOAD`]), written into `buf`.
pub fn telemetry_payload(n: u32, size: u16, buf: &mut [u8; MAX_PAYLOAD as usize]) -> &[u8] {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut rest = n;
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    buf[0] = b't';
    let total = usize::from(size).clamp(len + 1, buf.len());
    // The digits (most significant first), then the padding, in one pass:
    // the padding's `fill` linked the 220-byte `memset` for this alone.
    for (i, slot) in buf[1..total].iter_mut().enumerate() {
        *slot = len
            .checked_sub(i + 1)
            .and_then(|d| digits.get(d))
            .copied()
            .unwrap_or(b'.');
    }
    &buf[..total]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_ledger_expecting_is_new() {
        for expected in [0, 1, 40, MAX_COMMANDS, MAX_COMMANDS + 1, u32::MAX] {
            let mut commands = Commands::new(0);
            commands.expect(expected);
            assert_eq!(
                std::format!("{commands:?}"),
                std::format!("{:?}", Commands::new(expected))
            );
        }
    }

    #[test]
    fn commands_are_executed_once_each() {
        let mut commands = Commands::new(40);
        assert_eq!(commands.first_missing(), Some(1));
        assert_eq!(commands.execute(b"1"), Ok(Executed::New(1)));
        assert_eq!(commands.execute(b"33"), Ok(Executed::New(33)));
        assert_eq!(commands.execute(b"33"), Ok(Executed::Again(33)));
        assert_eq!((commands.executed(), commands.again()), (2, 1));
        assert_eq!(commands.first_missing(), Some(2));
        for n in 2..=40u32 {
            let text = std::format!("{n}");
            let _ = commands.execute(text.as_bytes()).unwrap();
        }
        assert!(commands.done());
        assert_eq!(commands.first_missing(), None);
        assert_eq!((commands.executed(), commands.again()), (40, 2));
    }

    #[test]
    fn bad_commands_are_refused_and_change_nothing() {
        let mut commands = Commands::new(10);
        for bad in [&b""[..], b"x", b"1 ", b" 1", b"-1", b"1.0", b"99999999999"] {
            assert_eq!(
                commands.execute(bad),
                Err(CommandError::NotANumber),
                "{bad:?}"
            );
        }
        assert_eq!(
            commands.execute(b"0"),
            Err(CommandError::OutOfRange {
                number: 0,
                expected: 10
            })
        );
        assert_eq!(
            commands.execute(b"11"),
            Err(CommandError::OutOfRange {
                number: 11,
                expected: 10
            })
        );
        assert_eq!((commands.executed(), commands.again()), (0, 0));
        assert_eq!(
            std::format!("{}", commands.execute(b"4294967295").unwrap_err()),
            "command 4294967295 is not in 1..=10"
        );
    }

    #[test]
    fn no_commands_is_done_at_once_and_the_count_is_capped() {
        assert!(Commands::new(0).done());
        assert_eq!(Commands::new(u32::MAX).expected(), MAX_COMMANDS);
        let mut all = Commands::new(MAX_COMMANDS);
        assert_eq!(all.execute(b"4096"), Ok(Executed::New(4096)));
    }

    #[test]
    fn telemetry_payloads_carry_their_number() {
        let mut buf = [0; MAX_PAYLOAD as usize];
        assert_eq!(telemetry_payload(1, 0, &mut buf), b"t1");
        assert_eq!(telemetry_payload(907, 3, &mut buf), b"t907");
        assert_eq!(telemetry_payload(42, 8, &mut buf), b"t42.....");
        assert_eq!(
            telemetry_payload(1_000_000_007, 13, &mut buf),
            b"t1000000007.."
        );
        assert_eq!(telemetry_payload(u32::MAX, 0, &mut buf), b"t4294967295");
        assert_eq!(telemetry_payload(5, u16::MAX, &mut buf).len(), 256);
    }
}
