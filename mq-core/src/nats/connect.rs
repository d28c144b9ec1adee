//! The JSON of `CONNECT` (what a client says about itself) and of `INFO`
//! (what the server says about itself), without allocation.
//!
//! Strings in `CONNECT` are taken as written: a JSON escape sequence
//! (`\"`, `\u0041`) is not decoded, so a token or password must not need
//! one. Fields mq does not use (`lang`, `version`, `protocol`, `user_jwt`,
//! `sig`, ...) are accepted and ignored.

use core::fmt::{self, Write};

use serde::Deserialize;

/// What a client's `CONNECT` says. Fields it leaves out keep nats-server's
/// defaults: `verbose`, `pedantic` and `echo` on, the rest off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ConnectOptions<'a> {
    /// Answer every accepted operation with `+OK`.
    #[serde(default = "yes")]
    pub verbose: bool,
    /// Check subjects strictly.
    #[serde(default = "yes")]
    pub pedantic: bool,
    /// Deliver the client's own messages to its own subscriptions.
    #[serde(default = "yes")]
    pub echo: bool,
    /// The client takes `HMSG` (header blocks).
    #[serde(default)]
    pub headers: bool,
    /// The client wants a `503` status message on the reply subject of a
    /// request nobody is subscribed to (needs `headers`).
    #[serde(default)]
    pub no_responders: bool,
    /// A token.
    #[serde(default, borrow)]
    pub auth_token: Option<&'a str>,
    /// A user name.
    #[serde(default, borrow)]
    pub user: Option<&'a str>,
    /// A password.
    #[serde(default, borrow)]
    pub pass: Option<&'a str>,
    /// The client's name.
    #[serde(default, borrow)]
    pub name: Option<&'a str>,
}

fn yes() -> bool {
    true
}

impl Default for ConnectOptions<'_> {
    /// What a client that sends no `CONNECT` gets (a person with telnet).
    fn default() -> Self {
        ConnectOptions {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            auth_token: None,
            user: None,
            pass: None,
            name: None,
        }
    }
}

/// Why a `CONNECT`'s JSON was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConnectError {
    /// Not one JSON object of the expected fields and types.
    Json,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectError::Json => "CONNECT is not a JSON object with fields of the right types",
        })
    }
}

impl core::error::Error for ConnectError {}

impl<'a> ConnectOptions<'a> {
    /// Parses the JSON of a `CONNECT` line.
    pub fn parse(json: &'a str) -> Result<Self, ConnectError> {
        serde_json_core::from_str::<ConnectOptions<'a>>(json)
            .map(|(opts, _)| opts)
            .map_err(|_| ConnectError::Json)
    }

    /// The secret the client presents: `auth_token`, else `pass`, else
    /// `user` (the same rule as MQTT's user name and password in mq).
    pub fn secret(&self) -> Option<&'a str> {
        self.auth_token.or(self.pass).or(self.user)
    }
}

/// What the server says in `INFO`, the first thing it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerInfo<'a> {
    /// Unique per server.
    pub server_id: &'a str,
    /// Its name.
    pub server_name: &'a str,
    /// Its version.
    pub version: &'a str,
    /// The largest payload (headers included) it takes.
    pub max_payload: usize,
    /// A token must come with `CONNECT`.
    pub auth_required: bool,
    /// The connection's id.
    pub client_id: u64,
}

impl ServerInfo<'_> {
    /// Writes the JSON object into `out`. Strings must be plain (no `"` or
    /// `\`), as the server's own names are.
    pub fn write_json(&self, out: &mut impl Write) -> fmt::Result {
        write!(
            out,
            "{{\"server_id\":\"{}\",\"server_name\":\"{}\",\"version\":\"{}\",\"proto\":1,\
             \"headers\":true,\"max_payload\":{},\"auth_required\":{},\"client_id\":{}}}",
            self.server_id,
            self.server_name,
            self.version,
            self.max_payload,
            self.auth_required,
            self.client_id
        )
    }
}
