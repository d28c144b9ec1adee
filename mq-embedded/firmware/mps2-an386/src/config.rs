//! The firmware's configuration, from its semihosting arguments.
//!
//! QEMU passes them with `-semihosting-config enable=on,target=native,arg=NAME,arg=KEY=VALUE,...`;
//! the first argument is the program name and is skipped. Every other argument is
//! `key=value`:
//!
//! | key | value | default |
//! | --- | --- | --- |
//! | `mode` | `echo` (send frames, read them echoed back, verify), `throughput` (send then receive `bytes`, print bytes/s), or `mq` (the mq application; only in the `mq` build) | `echo` |
//! | `host` | IPv4 address of the host peer | `10.0.2.2` (QEMU user networking's host) |
//! | `port` | TCP port of the host peer | required |
//! | `count` | frames to exchange in `echo` mode | `100` |
//! | `size` | largest frame payload in `echo` mode (bytes, 1..=65535) | `1024` |
//! | `bytes` | bytes each way in `throughput` mode | `1048576` |
//! | `connections` | how many times to connect and run the mode, one connection after the other | `1` |
//! | `addr` | `dhcp`, `static`, or `dhcp-then-static` (static after `dhcp_ms` without a lease) | `dhcp` |
//! | `ip` | static address with prefix, e.g. `10.0.2.15/24` | required by the static modes |
//! | `gw` | static default gateway | none |
//! | `dhcp_ms` | how long `dhcp-then-static` waits for a lease | `3000` |
//! | `timeout_ms` | deadline for the whole run, from boot | `20000` |
//!
//! For `mode=mq` (see `app_mq.rs`):
//!
//! | key | value | default |
//! | --- | --- | --- |
//! | `id` | the device: its mq client id, and the token in its topics `dev.<id>.cmd` and `dev.<id>.telemetry` (1 to 32 of `A-Z a-z 0-9 _ -`) | `fw1` |
//! | `telemetry` | telemetry messages to publish (QoS 1), numbered from 1 | `20` |
//! | `commands` | commands to execute: the numbers 1 to this, each at least once | `0` |
//! | `interval_ms` | time between telemetry messages; `0`: as fast as the outbox takes them | `10` |
//! | `payload` | telemetry payload size in bytes (at least the text `t<n>`, at most 256) | `0` |
//! | `marker` | print `mq: marker` once telemetry message number this is queued; `0`: never | `0` |
//! | `session` | `resume` (persistent session, kept across reconnects) or `clean` | `resume` |
//! | `from` | where the command subscription starts: `new` (messages after it) or a topic sequence number (retained ones from there) | `new` |
//!
//! Values contain no spaces: QEMU joins the arguments with spaces.

use core::fmt;
use core::str::FromStr;

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

/// What the application does once the network is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Send `count` length-prefixed frames, read each echoed back, verify the bytes.
    Echo,
    /// Send `bytes`, then receive `bytes`, and print the rate of each direction.
    Throughput,
    /// The mq application: telemetry out, commands in, through `mqd`.
    Mq,
}

/// How the interface gets its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// DHCP only.
    Dhcp,
    /// The static address only.
    Static(StaticIp),
    /// DHCP; the static address if no lease came within `dhcp_ms`.
    DhcpThenStatic(StaticIp),
}

/// A static IPv4 configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticIp {
    pub cidr: Ipv4Cidr,
    pub gateway: Option<Ipv4Address>,
}

/// The most commands an mq run may expect (the firmware keeps one bit each).
pub const MAX_COMMANDS: u32 = 4096;

/// The largest telemetry payload.
pub const MAX_PAYLOAD: u16 = 256;

/// The longest device id.
pub const MAX_ID_LEN: usize = 32;

/// A device id: 1 to [`MAX_ID_LEN`] of `A-Z a-z 0-9 _ -`, so it is a valid mq
/// client id and a valid topic token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeviceId {
    bytes: [u8; MAX_ID_LEN],
    len: u8,
}

impl DeviceId {
    /// `fw1`.
    pub const DEFAULT: DeviceId = {
        let mut bytes = [0; MAX_ID_LEN];
        bytes[0] = b'f';
        bytes[1] = b'w';
        bytes[2] = b'1';
        DeviceId { bytes, len: 3 }
    };

    /// `text` as an id, if it is one.
    pub fn new(text: &str) -> Option<DeviceId> {
        let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if text.is_empty() || text.len() > MAX_ID_LEN || !text.bytes().all(valid) {
            return None;
        }
        let mut bytes = [0; MAX_ID_LEN];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(DeviceId {
            bytes,
            len: text.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        // SAFETY: only ASCII goes in (see `new` and `DEFAULT`), and ASCII
        // is UTF-8. Not `str::from_utf8`: its validator, linked for this
        // alone, was 368 bytes of the mq firmware's flash.
        unsafe { core::str::from_utf8_unchecked(bytes) }
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the mq application's command subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandStart {
    /// Only commands published after the subscription.
    New,
    /// The retained commands from this topic sequence number on, then new ones.
    Seq(u64),
}

/// The mq application's settings (`mode=mq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqConfig {
    pub id: DeviceId,
    /// Telemetry messages to publish, numbered 1 to this.
    pub telemetry: u32,
    /// Commands to execute, numbered 1 to this.
    pub commands: u32,
    /// Between telemetry messages; 0: as fast as the outbox takes them.
    pub interval_ms: u64,
    /// Telemetry payload size (the text `t<n>`, padded).
    pub payload: u16,
    /// Print `mq: marker` once this telemetry message is queued (0: never).
    pub marker: u32,
    /// A persistent session (`session=resume`) or a clean one.
    pub resume: bool,
    pub from: CommandStart,
}

/// Everything the firmware was told by its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub mode: Mode,
    pub host: Ipv4Address,
    pub port: u16,
    pub count: u32,
    pub size: u16,
    pub bytes: u64,
    pub connections: u16,
    pub addressing: Addressing,
    pub dhcp_ms: u64,
    pub timeout_ms: u64,
    pub mq: MqConfig,
}

/// An argument the firmware cannot use; it says which and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError<'a> {
    /// An argument without `=`.
    NotKeyValue(&'a str),
    /// A key this firmware does not know.
    UnknownKey(&'a str),
    /// A known key with a value it cannot take; the last field says what it takes.
    BadValue {
        key: &'a str,
        value: &'a str,
        expected: &'static str,
    },
    /// A key that must be given was not.
    Missing(&'static str),
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotKeyValue(arg) => write!(f, "argument `{arg}` is not key=value"),
            ConfigError::UnknownKey(key) => write!(f, "unknown argument `{key}`"),
            ConfigError::BadValue {
                key,
                value,
                expected,
            } => write!(f, "`{key}={value}`: expected {expected}"),
            ConfigError::Missing(key) => write!(f, "missing argument `{key}=`"),
        }
    }
}

impl core::error::Error for ConfigError<'_> {}

impl Config {
    /// Parses the arguments after the program name.
    pub fn parse<'a, I>(args: I) -> Result<Config, ConfigError<'a>>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut mode = Mode::Echo;
        let mut host = Ipv4Address::new(10, 0, 2, 2);
        let mut port = None;
        let mut count = 100;
        let mut size = 1024;
        let mut bytes = 1 << 20;
        let mut connections = 1;
        let mut addr = "dhcp";
        let mut ip = None;
        let mut gateway = None;
        let mut dhcp_ms = 3000;
        let mut timeout_ms = 20_000;
        let mut mq = MqConfig {
            id: DeviceId::DEFAULT,
            telemetry: 20,
            commands: 0,
            interval_ms: 10,
            payload: 0,
            marker: 0,
            resume: true,
            from: CommandStart::New,
        };
        for arg in args {
            let (key, value) = arg.split_once('=').ok_or(ConfigError::NotKeyValue(arg))?;
            let bad = |expected| ConfigError::BadValue {
                key,
                value,
                expected,
            };
            match key {
                "mode" => {
                    mode = match value {
                        "echo" => Mode::Echo,
                        "throughput" => Mode::Throughput,
                        "mq" => Mode::Mq,
                        _ => return Err(bad("`echo`, `throughput` or `mq`")),
                    }
                }
                "host" => host = value.parse().map_err(|_| bad("an IPv4 address"))?,
                "port" => port = Some(nonzero(value).ok_or(bad("a port, 1..=65535"))?),
                "count" => count = value.parse().map_err(|_| bad("a frame count"))?,
                "size" => size = nonzero(value).ok_or(bad("a frame size, 1..=65535"))?,
                "bytes" => bytes = value.parse().map_err(|_| bad("a byte count"))?,
                "connections" => {
                    connections = nonzero(value).ok_or(bad("a connection count, 1..=65535"))?
                }
                "addr" => {
                    addr = match value {
                        "dhcp" | "static" | "dhcp-then-static" => value,
                        _ => return Err(bad("`dhcp`, `static` or `dhcp-then-static`")),
                    }
                }
                "ip" => {
                    let cidr = Ipv4Cidr::from_str(value)
                        .map_err(|_| bad("an address with prefix, e.g. 10.0.2.15/24"))?;
                    ip = Some(cidr);
                }
                "gw" => gateway = Some(value.parse().map_err(|_| bad("an IPv4 address"))?),
                "dhcp_ms" => dhcp_ms = value.parse().map_err(|_| bad("milliseconds"))?,
                "timeout_ms" => timeout_ms = value.parse().map_err(|_| bad("milliseconds"))?,
                "id" => {
                    mq.id = DeviceId::new(value)
                        .ok_or(bad("1 to 32 of the characters A-Z a-z 0-9 _ -"))?
                }
                "telemetry" => mq.telemetry = value.parse().map_err(|_| bad("a message count"))?,
                "commands" => {
                    mq.commands =
                        at_most(value, MAX_COMMANDS).ok_or(bad("a command count, 0..=4096"))?
                }
                "interval_ms" => mq.interval_ms = value.parse().map_err(|_| bad("milliseconds"))?,
                "payload" => {
                    mq.payload =
                        at_most(value, MAX_PAYLOAD).ok_or(bad("a payload size, 0..=256"))?
                }
                "marker" => mq.marker = value.parse().map_err(|_| bad("a message number"))?,
                "session" => {
                    mq.resume = match value {
                        "resume" => true,
                        "clean" => false,
                        _ => return Err(bad("`resume` or `clean`")),
                    }
                }
                "from" => {
                    mq.from = match value {
                        "new" => CommandStart::New,
                        _ => CommandStart::Seq(
                            value
                                .parse()
                                .map_err(|_| bad("`new` or a sequence number"))?,
                        ),
                    }
                }
                _ => return Err(ConfigError::UnknownKey(key)),
            }
        }
        let port = port.ok_or(ConfigError::Missing("port"))?;
        let static_ip = || {
            ip.map(|cidr| StaticIp { cidr, gateway })
                .ok_or(ConfigError::Missing("ip"))
        };
        let addressing = match addr {
            "static" => Addressing::Static(static_ip()?),
            "dhcp-then-static" => Addressing::DhcpThenStatic(static_ip()?),
            _ => Addressing::Dhcp,
        };
        Ok(Config {
            mode,
            host,
            port,
            count,
            size,
            bytes,
            connections,
            addressing,
            dhcp_ms,
            timeout_ms,
            mq,
        })
    }
}

/// A number no larger than `max`.
fn at_most<T: FromStr + PartialOrd>(value: &str, max: T) -> Option<T> {
    value.parse().ok().filter(|n| *n <= max)
}

/// A `u16` other than zero.
fn nonzero(value: &str) -> Option<u16> {
    value.parse().ok().filter(|&n| n != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Config, ConfigError<'_>> {
        Config::parse(args.split_whitespace())
    }

    #[test]
    fn defaults_need_only_a_port() {
        let config = parse("port=7777").unwrap();
        assert_eq!(config.mode, Mode::Echo);
        assert_eq!(config.host, Ipv4Address::new(10, 0, 2, 2));
        assert_eq!(config.port, 7777);
        assert_eq!((config.count, config.size), (100, 1024));
        assert_eq!(config.connections, 1);
        assert_eq!(config.addressing, Addressing::Dhcp);
        assert_eq!(config.timeout_ms, 20_000);
        assert_eq!(
            config.mq,
            MqConfig {
                id: DeviceId::new("fw1").unwrap(),
                telemetry: 20,
                commands: 0,
                interval_ms: 10,
                payload: 0,
                marker: 0,
                resume: true,
                from: CommandStart::New,
            }
        );
        assert_eq!(config.mq.id.as_str(), "fw1");
    }

    #[test]
    fn every_key_is_read() {
        let config = parse(
            "mode=throughput host=10.0.2.100 port=9 count=5 size=77 bytes=4096 \
             connections=3 addr=dhcp-then-static ip=10.0.2.15/24 gw=10.0.2.2 dhcp_ms=50 timeout_ms=900",
        )
        .unwrap();
        let static_ip = StaticIp {
            cidr: Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24),
            gateway: Some(Ipv4Address::new(10, 0, 2, 2)),
        };
        assert_eq!(
            config,
            Config {
                mode: Mode::Throughput,
                host: Ipv4Address::new(10, 0, 2, 100),
                port: 9,
                count: 5,
                size: 77,
                bytes: 4096,
                connections: 3,
                addressing: Addressing::DhcpThenStatic(static_ip),
                dhcp_ms: 50,
                timeout_ms: 900,
                mq: parse("port=1").unwrap().mq,
            }
        );
        let mq = parse(
            "port=9 mode=mq id=Board_7-x telemetry=500 commands=4096 interval_ms=0 payload=256 \
             marker=250 session=clean from=12",
        )
        .unwrap();
        assert_eq!(mq.mode, Mode::Mq);
        assert_eq!(
            mq.mq,
            MqConfig {
                id: DeviceId::new("Board_7-x").unwrap(),
                telemetry: 500,
                commands: 4096,
                interval_ms: 0,
                payload: 256,
                marker: 250,
                resume: false,
                from: CommandStart::Seq(12),
            }
        );
        assert_eq!(mq.mq.id.as_str(), "Board_7-x");
        assert_eq!(
            parse("port=9 session=resume from=new").unwrap().mq,
            parse("port=9").unwrap().mq
        );
        assert_eq!(
            parse("port=9 addr=static ip=10.0.2.15/24")
                .unwrap()
                .addressing,
            Addressing::Static(StaticIp {
                gateway: None,
                ..static_ip
            })
        );
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert_eq!(parse(""), Err(ConfigError::Missing("port")));
        assert_eq!(parse("port"), Err(ConfigError::NotKeyValue("port")));
        assert_eq!(
            parse("port=1 colour=red"),
            Err(ConfigError::UnknownKey("colour"))
        );
        assert_eq!(parse("port=1 addr=static"), Err(ConfigError::Missing("ip")));
        for bad in [
            "port=0",
            "port=70000",
            "port=1 host=10.0.2",
            "port=1 mode=fast",
            "port=1 size=0",
            "port=1 connections=0",
            "port=1 ip=10.0.2.15",
            "port=1 addr=bootp",
            "port=1 timeout_ms=-1",
            "port=1 id=",
            "port=1 id=a.b",
            "port=1 id=dev>",
            "port=1 id=abcdefghijklmnopqrstuvwxyz0123456",
            "port=1 telemetry=-1",
            "port=1 commands=4097",
            "port=1 payload=257",
            "port=1 session=dirty",
            "port=1 from=old",
            "port=1 interval_ms=1.5",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadValue { .. }),
                "{bad}: {err:?}"
            );
        }
        let message = std::format!("{}", parse("port=1 size=0").unwrap_err());
        assert_eq!(message, "`size=0`: expected a frame size, 1..=65535");
        assert!(
            DeviceId::new("abcdefghijklmnopqrstuvwxyz012345").is_some(),
            "32 is fine"
        );
    }
}
