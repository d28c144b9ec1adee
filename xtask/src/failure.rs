//! How a task ends when it does not succeed: every task returns a [`Failure`],
//! and `main` turns it into a message and an exit code.

/// How a task ended when it did not succeed; decides the exit code.
pub enum Failure {
    /// Bad arguments: the message and the usage are printed, exit code 2.
    Usage(String),
    /// The task failed: the message is printed, exit code 1.
    Failed(String),
    /// The task failed and has already said why, exit code 1.
    Reported,
}
