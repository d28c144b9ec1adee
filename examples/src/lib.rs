//! Runnable examples of the messaging patterns (one-to-one, one-to-many,
//! many-to-many, competing consumers, request-reply, replay) in Rust, C, C++ and
//! Python. They arrive with the clients they use.
