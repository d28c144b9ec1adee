//! How a command fails: [`Fail`] carries the one line `mq` prints.

use std::fmt;

/// Why a command failed: printed as `mq: <text>`, exit code 1.
#[derive(Debug)]
pub struct Fail(pub String);

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
