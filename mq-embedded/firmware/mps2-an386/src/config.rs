//! The firmware's configuration, from its semihosting arguments.
//!
//! QEMU passes them with `-semihosting-config enable=on,target=native,arg=NAME,arg=KEY=VALUE,...`;
//! the first argument is the program name and is skipped. Every other argument is
//! `key=value`:
//!
//! | key | value | default |
//! | --- | --- | --- |
//! | `mode` | `echo` (send frames, read them echoed back, verify) or `throughput` (send then receive `bytes`, print bytes/s) | `echo` |
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
                        _ => return Err(bad("`echo` or `throughput`")),
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
        })
    }
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
            }
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
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadValue { .. }),
                "{bad}: {err:?}"
            );
        }
        let message = std::format!("{}", parse("port=1 size=0").unwrap_err());
        assert_eq!(message, "`size=0`: expected a frame size, 1..=65535");
    }
}
