//! `mq stat`: fetches `/metrics` from the daemon's HTTP endpoint (plain std
//! TCP, no runtime) and prints the counters and queue depths as a table.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use clap::Args;

use crate::fail::Fail;

/// How long connecting, sending and reading may each take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a response read.
const MAX_RESPONSE: u64 = 16 << 20;

#[derive(Debug, Args)]
pub struct StatArgs {
    /// The daemon's HTTP endpoint.
    #[arg(long, env = "MQ_HTTP", value_name = "HOST:PORT",
          default_value = mq_server::DEFAULT_HTTP_ADDR)]
    http: String,
}

pub fn run(args: &StatArgs) -> Result<(), Fail> {
    let body = get(&args.http, "/metrics").map_err(|e| {
        Fail(format!(
            "cannot read metrics from mqd at {}: {e}",
            args.http
        ))
    })?;
    let rows = parse(&body);
    if rows.is_empty() {
        return Err(Fail(format!(
            "mqd at {} sent no metrics on /metrics",
            args.http
        )));
    }
    crate::output::print(&table(&rows))
}

/// `GET path` over HTTP/1.1; the body of a `200` answer.
fn get(addr: &str, path: &str) -> Result<String, String> {
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| format!("bad address: {e}"))?;
    let mut last = "the address resolves to nothing".to_string();
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, IO_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let io = |e: std::io::Error| e.to_string();
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .map_err(io)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("not an HTTP response")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("the answer was {status:?}"));
    }
    Ok(body.to_string())
}

/// `(name, value)` of every sample in a Prometheus text exposition, in order.
fn parse(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(name, value)| (name.trim_end(), value))
        .collect()
}

/// The rows as two aligned columns, values right-aligned.
fn table(rows: &[(&str, &str)]) -> String {
    let name_width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let value_width = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value) in rows {
        out.push_str(&format!("{name:<name_width$}  {value:>value_width$}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_and_aligns_them() {
        let text = "# HELP mq_connections Open connections.\n# TYPE mq_connections gauge\n\
                    mq_connections 3\nmq_messages_in_total 1200\n\
                    mq_queue_depth{owner=\"a b\",filter=\"x.>\",kind=\"group\"} 7\n";
        let rows = parse(text);
        assert_eq!(
            rows,
            [
                ("mq_connections", "3"),
                ("mq_messages_in_total", "1200"),
                (
                    "mq_queue_depth{owner=\"a b\",filter=\"x.>\",kind=\"group\"}",
                    "7"
                ),
            ]
        );
        let table = table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{table}");
        assert!(lines[0].ends_with("     3"), "{table}");
    }
}
