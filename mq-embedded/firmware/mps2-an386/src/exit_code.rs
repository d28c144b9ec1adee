//! How a firmware run ends: the exit status QEMU returns. `cargo xtask qemu`
//! includes this file to name the codes.

/// A run's result, as QEMU's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Success = 0,
    /// The arguments were unusable.
    Config = 2,
    /// The Ethernet controller did not come up.
    Board = 3,
    /// No address, connection refused, reset or closed early.
    Network = 4,
    /// Received bytes differ from what was sent.
    Mismatch = 5,
    /// The run's deadline passed.
    Timeout = 6,
    /// The mq broker refused a publish or a subscription, or ended the session.
    Refused = 7,
    /// A panic (the message went to stderr).
    Panic = 101,
    /// A fault or an unexpected interrupt.
    Fault = 102,
}

impl ExitCode {
    const ALL: [ExitCode; 9] = [
        ExitCode::Success,
        ExitCode::Config,
        ExitCode::Board,
        ExitCode::Network,
        ExitCode::Mismatch,
        ExitCode::Timeout,
        ExitCode::Refused,
        ExitCode::Panic,
        ExitCode::Fault,
    ];

    /// The code for an exit status, if it is one of ours.
    pub fn from_status(status: i32) -> Option<ExitCode> {
        Self::ALL
            .into_iter()
            .find(|code| i32::from(*code as u8) == status)
    }

    /// What the code means, in a few words.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::Config => "bad arguments",
            ExitCode::Board => "Ethernet controller did not come up",
            ExitCode::Network => "network failure",
            ExitCode::Mismatch => "data mismatch",
            ExitCode::Timeout => "deadline passed",
            ExitCode::Refused => "refused by the broker",
            ExitCode::Panic => "panic",
            ExitCode::Fault => "fault",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_back_to_codes() {
        for code in ExitCode::ALL {
            assert_eq!(ExitCode::from_status(i32::from(code as u8)), Some(code));
        }
        assert_eq!(ExitCode::from_status(1), None);
        assert_eq!(ExitCode::from_status(-1), None);
    }
}
