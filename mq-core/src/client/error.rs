//! One error type per [`Session`](super::Session) operation.

use core::fmt;

/// A [`Config`](super::Config) could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// The client id is longer than [`MAX_CLIENT_ID_LEN`](super::MAX_CLIENT_ID_LEN).
    ClientIdTooLong,
    /// The token is longer than [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN).
    TokenTooLong,
}

impl ConfigError {
    /// What went wrong, in a few words (what `Display` writes): for a
    /// device that prints it without linking the formatter's call.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ConfigError::ClientIdTooLong => "client id too long",
            ConfigError::TokenTooLong => "token too long",
        }
    }
}

impl core::error::Error for ConfigError {}

/// A frame was not consumed: the session has no room for what it would produce.
/// Drain [`poll_event`](super::Session::poll_event) (and
/// [`poll_transmit`](super::Session::poll_transmit)), then hand the same frame in
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Backpressure {
    /// The inbox cannot take the delivery until the application consumes events.
    Inbox,
    /// Every held-table slot is taken by an unacked delivery or a queued ack.
    Held,
    /// The event queue is full.
    Events,
    /// Control frames (pongs) wait to be transmitted.
    Transmit,
}

impl fmt::Display for Backpressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backpressure::Inbox => "inbox full",
            Backpressure::Held => "held table full",
            Backpressure::Events => "event queue full",
            Backpressure::Transmit => "transmit queue full",
        })
    }
}

impl core::error::Error for Backpressure {}

/// [`Session::publish`](super::Session::publish) refused a message; nothing was
/// queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PublishError {
    /// The topic is not a valid topic name.
    InvalidTopic,
    /// The message can never be sent: larger than the whole outbox, or its topic
    /// and properties alone exceed the largest frame (the broker's maximum,
    /// capped by `Config::max_frame_out`).
    TooLarge,
    /// The outbox has no room right now; retry after acknowledgements free some.
    OutboxFull,
}

impl PublishError {
    /// What went wrong, in a few words (what `Display` writes): for a
    /// device that prints it without linking the formatter's call.
    pub const fn as_str(&self) -> &'static str {
        match self {
            PublishError::InvalidTopic => "invalid topic",
            PublishError::TooLarge => "message too large",
            PublishError::OutboxFull => "outbox full",
        }
    }
}

impl core::error::Error for PublishError {}

/// [`Session::subscribe`](super::Session::subscribe) refused a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SubscribeError {
    /// The filter is not a valid topic filter.
    InvalidFilter,
    /// The filter is longer than [`MAX_FILTER_LEN`](super::MAX_FILTER_LEN).
    FilterTooLong,
    /// The group name is empty or longer than
    /// [`MAX_GROUP_LEN`](super::MAX_GROUP_LEN).
    InvalidGroup,
    /// Every subscription slot is taken.
    TableFull,
}

impl SubscribeError {
    /// What went wrong, in a few words (what `Display` writes): for a
    /// device that prints it without linking the formatter's call.
    pub const fn as_str(&self) -> &'static str {
        match self {
            SubscribeError::InvalidFilter => "invalid filter",
            SubscribeError::FilterTooLong => "filter too long",
            SubscribeError::InvalidGroup => "invalid group name",
            SubscribeError::TableFull => "subscription table full",
        }
    }
}

impl core::error::Error for SubscribeError {}

/// [`Session::unsubscribe`](super::Session::unsubscribe) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum UnsubscribeError {
    /// No such subscription.
    UnknownSub,
}

impl fmt::Display for UnsubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnsubscribeError::UnknownSub => "unknown subscription",
        })
    }
}

impl core::error::Error for UnsubscribeError {}

/// [`Session::ack`](super::Session::ack) or [`Session::nack`](super::Session::nack)
/// sent nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AckError {
    /// The id names no held delivery: already acked or nacked, or never issued.
    Unknown,
    /// The delivery arrived on an earlier connection, so its broker tag is
    /// useless. It is no longer held; an ack (or a nack without requeue) is
    /// remembered and repeated when the broker redelivers the message, which
    /// is then not shown again. An ack is also sent by message
    /// ([`AckMessage`](crate::wire::AckMessage)): now if connected, else
    /// after the session is resumed.
    Stale,
}

impl AckError {
    /// What went wrong, in a few words (what `Display` writes): for a
    /// device that prints it without linking the formatter's call.
    pub const fn as_str(&self) -> &'static str {
        match self {
            AckError::Unknown => "unknown delivery",
            AckError::Stale => "delivery from an earlier connection",
        }
    }
}

impl core::error::Error for AckError {}

/// [`Session::grant_credit`](super::Session::grant_credit) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CreditError {
    /// No such subscription.
    UnknownSub,
}

impl fmt::Display for CreditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CreditError::UnknownSub => "unknown subscription",
        })
    }
}

impl core::error::Error for CreditError {}

/// [`Session::request`](super::Session::request) refused a request; nothing was
/// queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RequestError {
    /// The topic is not a valid topic name.
    InvalidTopic,
    /// The request can never be sent (see [`PublishError::TooLarge`]).
    TooLarge,
    /// The outbox has no room right now.
    OutboxFull,
    /// Every slot of the table of pending requests is taken (including requests
    /// whose failure [`poll_event`](super::Session::poll_event) has not reported
    /// yet).
    TableFull,
}

impl From<PublishError> for RequestError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::InvalidTopic => RequestError::InvalidTopic,
            PublishError::TooLarge => RequestError::TooLarge,
            PublishError::OutboxFull => RequestError::OutboxFull,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::InvalidTopic => "invalid topic",
            RequestError::TooLarge => "message too large",
            RequestError::OutboxFull => "outbox full",
            RequestError::TableFull => "too many pending requests",
        })
    }
}

impl core::error::Error for RequestError {}

/// `Display` of the errors a device prints with `as_str`: the same words.
macro_rules! display_as_str {
    ($($error:ty),*) => {$(
        impl fmt::Display for $error {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(ConfigError, PublishError, SubscribeError, AckError);
