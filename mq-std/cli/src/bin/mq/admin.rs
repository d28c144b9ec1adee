//! `mq topics`, `mq sessions`, `mq messages`, `mq purge` and `mq rm`: the
//! broker's admin requests over the mq protocol (the token needs the admin
//! permission), printed as a table or, with `--json`, as the HTTP API's JSON.

use clap::Args;
use mq_client::client::{Admin, AdminReply, Error, Reason};
use mq_server::http::api::to_json;

use crate::daemon::Server;
use crate::fail::Fail;
use crate::output::{self, escape, outln};

/// `--json`, shared by every admin command.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print the answer as JSON (the same as mqd's HTTP API).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct MessagesArgs {
    /// The topic.
    topic: String,
    /// First sequence number (0: the oldest kept).
    #[arg(long, value_name = "SEQ", default_value = "0")]
    from: u64,
    /// Most messages listed (0: only count them).
    #[arg(long, value_name = "N", default_value = "20")]
    limit: u32,
    /// Payload bytes shown of each.
    #[arg(long, value_name = "BYTES", default_value = "64")]
    max_payload: u32,
    #[command(flatten)]
    out: JsonArg,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// The topic.
    topic: String,
    /// Drop the messages with a lower sequence number than this.
    #[arg(long, value_name = "SEQ")]
    before: u64,
    #[command(flatten)]
    out: JsonArg,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The topic to delete, with its messages and numbering.
    topic: String,
    #[command(flatten)]
    out: JsonArg,
}

/// What to ask, and how to print the answer.
pub enum Ask {
    Topics(JsonArg),
    Sessions(JsonArg),
    Messages(MessagesArgs),
    Purge(PurgeArgs),
    Rm(RmArgs),
}

pub async fn run(server: &Server, ask: Ask) -> Result<(), Fail> {
    let (request, json) = match ask {
        Ask::Topics(o) => (Admin::Topics, o.json),
        Ask::Sessions(o) => (Admin::Sessions, o.json),
        Ask::Messages(a) => (
            Admin::Messages {
                topic: a.topic,
                from: a.from,
                limit: a.limit,
                max_payload: a.max_payload,
            },
            a.out.json,
        ),
        Ask::Purge(a) => (
            Admin::Purge {
                topic: a.topic,
                before: a.before,
            },
            a.out.json,
        ),
        Ask::Rm(a) => (Admin::DeleteTopic { topic: a.topic }, a.out.json),
    };
    let client = server.connect().await?;
    let answer = client.admin(request.clone()).await;
    client.close().await;
    let answer = answer.map_err(|e| refused(&request, e))?;
    if json {
        outln!("{:#}", to_json(&answer))?;
    } else {
        output::print(&text(&answer))?;
    }
    Ok(())
}

/// Why the broker did not answer, on one line.
fn refused(request: &Admin, e: Error) -> Fail {
    let topic = match request {
        Admin::Messages { topic, .. }
        | Admin::Purge { topic, .. }
        | Admin::DeleteTopic { topic } => topic.as_str(),
        _ => "",
    };
    Fail(match e {
        Error::Rejected(Reason::NotAuthorized) => "mqd refused: this token may not manage the \
             broker (give it `admin = true` in mqd's config, and pass it with --token or MQ_TOKEN)"
            .to_string(),
        Error::Rejected(Reason::UnknownId) => format!("no such topic: {topic}"),
        Error::Rejected(Reason::InvalidTopic) => format!("not a valid topic name: {topic:?}"),
        e => format!("the admin request failed: {e}"),
    })
}

/// The answer as aligned text.
fn text(answer: &AdminReply) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut note = String::new();
    match answer {
        AdminReply::Topics { topics, truncated } => {
            rows.push(cols(&[
                "TOPIC", "FIRST", "LAST", "KEPT", "BYTES", "SUBS", "IN",
            ]));
            for t in topics {
                rows.push(vec![
                    t.name.clone(),
                    t.first_seq.to_string(),
                    t.last_seq.to_string(),
                    t.retained.to_string(),
                    t.retained_bytes.to_string(),
                    t.subscribers.to_string(),
                    t.messages_in.to_string(),
                ]);
            }
            if *truncated {
                note.push_str(
                    "(more topics than one answer holds: GET /api/topics on the HTTP port lists all)\n",
                );
            }
        }
        AdminReply::Sessions {
            sessions,
            truncated,
        } => {
            rows.push(cols(&[
                "CLIENT", "STATE", "SUB", "FILTER", "GROUP", "WAITING", "INFLIGHT", "DEAD",
            ]));
            for s in sessions {
                let state = match (s.connected, s.persistent) {
                    (true, true) => "connected,persistent",
                    (true, false) => "connected",
                    (false, _) => "away,persistent",
                };
                if s.subscriptions.is_empty() {
                    rows.push(vec![s.client.clone(), state.into()]);
                }
                for sub in &s.subscriptions {
                    rows.push(vec![
                        s.client.clone(),
                        state.into(),
                        sub.id.to_string(),
                        sub.filter.clone(),
                        sub.group.clone().unwrap_or_else(|| "-".into()),
                        sub.waiting.to_string(),
                        sub.inflight.to_string(),
                        sub.dead_lettered.to_string(),
                    ]);
                }
            }
            if *truncated {
                note.push_str(
                    "(more sessions than one answer holds: GET /api/sessions lists all)\n",
                );
            }
        }
        AdminReply::Messages(list) => {
            rows.push(cols(&["SEQ", "ID", "SIZE", "PAYLOAD"]));
            for m in &list.messages {
                rows.push(vec![
                    m.seq.to_string(),
                    m.id.to_string(),
                    m.size.to_string(),
                    escape(&m.payload),
                ]);
            }
            note = format!("{} keeps {} messages\n", list.topic, list.total);
        }
        AdminReply::Purged { retained, queued } => {
            return format!("purged {retained} kept messages and {queued} queued copies\n");
        }
        AdminReply::Deleted { retained, queued } => {
            return format!(
                "deleted the topic: {retained} kept messages and {queued} queued copies\n"
            );
        }
        AdminReply::Refused { text, .. } => return format!("refused: {text}\n"),
    }
    table(&rows) + &note
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Rows as left-aligned columns two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let rows = vec![cols(&["A", "BB"]), cols(&["ccc", "d"])];
        assert_eq!(table(&rows), "A    BB\nccc  d\n");
    }
}
