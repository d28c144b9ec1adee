//! The catalog in Redis, across machines: every change is a Lua script (see
//! [`scripts`] for the keys), times are the server's clock, and node hashes
//! expire with their lease (`PEXPIRE`). One multiplexed connection, opened
//! again on the call after it broke.

mod decode;
mod scripts;

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script, Value};

use crate::model::{
    self, Enqueued, Envelope, Interest, Interests, Nodes, Options, Page, Unreadable,
};
use crate::{Error, Registration};
use decode::{
    decode_interest, decode_node, decode_offline, encode_interest, int, ints, items, number,
};

const BACKEND: &str = "redis";

/// The oldest Redis the scripts work on: they read `TIME` and then write,
/// which Redis replicates only as effects, the default from Redis 5 on.
const OLDEST: (u32, u32) = (5, 0);

pub(crate) struct RedisCatalog {
    client: Client,
    prefix: String,
    queue_limit: u64,
    /// How long connecting, and then each call, waits for the server.
    timeout: Duration,
    conn: Mutex<Option<MultiplexedConnection>>,
    scripts: &'static Scripts,
}

struct Scripts {
    register: Script,
    heartbeat: Script,
    deregister: Script,
    live_nodes: Script,
    reap: Script,
    add_interest: Script,
    remove_interest: Script,
    forget_session: Script,
    interests: Script,
    enqueue: Script,
    read: Script,
    ack: Script,
    queue_len: Script,
    destroy: Script,
}

/// Each script with its SHA1, computed once.
static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    register: Script::new(scripts::REGISTER),
    heartbeat: Script::new(scripts::HEARTBEAT),
    deregister: Script::new(scripts::DEREGISTER),
    live_nodes: Script::new(scripts::LIVE_NODES),
    reap: Script::new(scripts::REAP),
    add_interest: Script::new(scripts::ADD_INTEREST),
    remove_interest: Script::new(scripts::REMOVE_INTEREST),
    forget_session: Script::new(scripts::FORGET_SESSION),
    interests: Script::new(scripts::INTERESTS),
    enqueue: Script::new(scripts::ENQUEUE),
    read: Script::new(scripts::READ),
    ack: Script::new(scripts::ACK),
    queue_len: Script::new(scripts::QUEUE_LEN),
    destroy: Script::new(scripts::DESTROY),
});

impl RedisCatalog {
    pub(crate) async fn open(url: &str, options: Options) -> Result<RedisCatalog, Error> {
        let client = Client::open(url).map_err(|err| Error::Url(format!("`{url}`: {err}")))?;
        let catalog = RedisCatalog {
            client,
            prefix: format!("{}:", options.namespace),
            queue_limit: options.queue_limit,
            timeout: options.call_timeout,
            conn: Mutex::new(None),
            scripts: &SCRIPTS,
        };
        let mut conn = catalog.connection().await?;
        // A server that does not say its version (INFO refused by an ACL)
        // is taken at its word; the scripts then fail on a Redis before 4.
        let info: Result<String, _> = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await;
        match info.map_err(|err| catalog.failed(err)) {
            Err(err @ Error::Unavailable { .. }) => return Err(err),
            Err(_) => {}
            Ok(info) => check_version(&info)?,
        }
        Ok(catalog)
    }

    /// The connection, opened first if there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, Error> {
        if let Some(conn) = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(failed)?;
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `script` with the prefix and `args`; forgets the connection if
    /// the server is out of reach.
    async fn run(&self, script: &Script, args: &[&[u8]]) -> Result<Value, Error> {
        let mut conn = self.connection().await?;
        let mut invocation = script.prepare_invoke();
        invocation.arg(self.prefix.as_bytes());
        for arg in args {
            invocation.arg(*arg);
        }
        invocation
            .invoke_async::<Value>(&mut conn)
            .await
            .map_err(|err| self.failed(err))
    }

    /// Sorts `err`, forgetting the connection if the server is out of reach.
    fn failed(&self, err: redis::RedisError) -> Error {
        let err = failed(err);
        if matches!(err, Error::Unavailable { .. }) {
            *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        err
    }

    pub(crate) async fn register(
        &self,
        node: &str,
        addr: &str,
        lease: i64,
    ) -> Result<Registration, Error> {
        let lease = lease.to_string();
        let reply = self
            .run(
                &self.scripts.register,
                &[node.as_bytes(), addr.as_bytes(), lease.as_bytes()],
            )
            .await?;
        Ok(Registration {
            node: node.to_owned(),
            incarnation: model::unsigned("incarnation", int(&reply)?)?,
        })
    }

    pub(crate) async fn heartbeat(&self, node: &str, held: i64, lease: i64) -> Result<(), Error> {
        let (held_arg, lease) = (held.to_string(), lease.to_string());
        let reply = self
            .run(
                &self.scripts.heartbeat,
                &[node.as_bytes(), held_arg.as_bytes(), lease.as_bytes()],
            )
            .await?;
        match ints(&reply)?.as_slice() {
            [1] => Ok(()),
            [0] => Err(model::refused(node.to_owned(), held, None)),
            [0, current] => Err(model::refused(node.to_owned(), held, Some(*current))),
            other => Err(Error::Malformed(format!("heartbeat answered {other:?}"))),
        }
    }

    pub(crate) async fn deregister(&self, node: &str, held: i64) -> Result<(), Error> {
        let held_arg = held.to_string();
        let reply = self
            .run(
                &self.scripts.deregister,
                &[node.as_bytes(), held_arg.as_bytes()],
            )
            .await?;
        match int(&reply)? {
            0 => Ok(()),
            current => Err(model::fenced(node.to_owned(), held, current)),
        }
    }

    pub(crate) async fn live_nodes(&self) -> Result<Nodes, Error> {
        let reply = self.run(&self.scripts.live_nodes, &[]).await?;
        let mut listed = Nodes::default();
        for item in items(&reply, 4)? {
            match decode_node(item) {
                Ok(node) => listed.nodes.push(node),
                Err(unreadable) => listed.unreadable.push(unreadable),
            }
        }
        listed.nodes.sort_by(|a, b| a.id.cmp(&b.id));
        listed.unreadable.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listed)
    }

    pub(crate) async fn reap_expired(&self) -> Result<u64, Error> {
        let reply = self.run(&self.scripts.reap, &[]).await?;
        model::unsigned("reaped", int(&reply)?)
    }

    pub(crate) async fn add_interest(&self, interest: &Interest) -> Result<(), Error> {
        let encoded = encode_interest(interest);
        self.run(
            &self.scripts.add_interest,
            &[
                interest.session.as_bytes(),
                interest.filter.as_bytes(),
                encoded.as_bytes(),
            ],
        )
        .await
        .map(drop)
    }

    pub(crate) async fn remove_interest(&self, session: &str, filter: &str) -> Result<bool, Error> {
        let reply = self
            .run(
                &self.scripts.remove_interest,
                &[session.as_bytes(), filter.as_bytes()],
            )
            .await?;
        Ok(int(&reply)? > 0)
    }

    pub(crate) async fn forget_session(&self, session: &str) -> Result<u64, Error> {
        let reply = self
            .run(&self.scripts.forget_session, &[session.as_bytes()])
            .await?;
        model::unsigned("forgotten", int(&reply)?)
    }

    pub(crate) async fn interests(&self) -> Result<Interests, Error> {
        let reply = self.run(&self.scripts.interests, &[]).await?;
        let mut listed = Interests::default();
        for item in items(&reply, 3)? {
            match decode_interest(item) {
                Ok(interest) => listed.interests.push(interest),
                Err(unreadable) => listed.unreadable.push(unreadable),
            }
        }
        listed
            .interests
            .sort_by(|a, b| (&a.session, &a.filter).cmp(&(&b.session, &b.filter)));
        (listed.unreadable).sort_by(|a, b| (&a.session, &a.filter).cmp(&(&b.session, &b.filter)));
        Ok(listed)
    }

    pub(crate) async fn enqueue_all(
        &self,
        recipient: &str,
        messages: &[Envelope],
    ) -> Result<Vec<Result<Enqueued, Error>>, Error> {
        let limit = self.queue_limit.to_string();
        let mut texts = Vec::with_capacity(messages.len());
        for m in messages {
            let ttl = model::ttl_ms(m.ttl)?.unwrap_or(0).to_string();
            let origin = &m.origin;
            texts.push([ttl, origin.incarnation.to_string(), origin.seq.to_string()]);
        }
        let mut args: Vec<&[u8]> = vec![recipient.as_bytes(), limit.as_bytes()];
        for (m, [ttl, incarnation, seq]) in messages.iter().zip(&texts) {
            args.extend([
                ttl.as_bytes(),
                m.origin.node.as_bytes(),
                incarnation.as_bytes(),
                seq.as_bytes(),
                m.topic.as_bytes(),
                &m.payload,
                &m.meta,
            ]);
        }
        let reply = self.run(&self.scripts.enqueue, &args).await?;
        let answers = ints(&reply)?;
        if answers.len() != 2 * messages.len() {
            return Err(Error::Malformed(format!("enqueue answered {answers:?}")));
        }
        (answers.chunks(2))
            .map(|answer| match answer {
                [1, id] => Ok(Ok(Enqueued::Stored(model::unsigned("id", *id)?))),
                [2, id] => Ok(Ok(Enqueued::Duplicate(model::unsigned("id", *id)?))),
                [3, _] => Ok(Err(Error::QueueFull {
                    recipient: recipient.to_owned(),
                    limit: self.queue_limit,
                })),
                other => Err(Error::Malformed(format!("enqueue answered {other:?}"))),
            })
            .collect()
    }

    pub(crate) async fn read(&self, recipient: &str, after: i64, max: i64) -> Result<Page, Error> {
        let (after, max) = (after.to_string(), max.to_string());
        let reply = self
            .run(
                &self.scripts.read,
                &[recipient.as_bytes(), after.as_bytes(), max.as_bytes()],
            )
            .await?;
        let mut page = Page::default();
        for m in items(&reply, 9)? {
            let id = number(&m[0])?;
            match decode_offline(id, m) {
                Ok(message) => page.messages.push(message),
                Err(reason) => page.unreadable.push(Unreadable { id, reason }),
            }
        }
        Ok(page)
    }

    pub(crate) async fn ack(&self, recipient: &str, ids: &[i64]) -> Result<u64, Error> {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        let mut args = vec![recipient.as_bytes()];
        args.extend(ids.iter().map(|id| id.as_bytes()));
        let reply = self.run(&self.scripts.ack, &args).await?;
        model::unsigned("acked", int(&reply)?)
    }

    pub(crate) async fn queue_len(&self, recipient: &str) -> Result<u64, Error> {
        let reply = self
            .run(&self.scripts.queue_len, &[recipient.as_bytes()])
            .await?;
        model::unsigned("queue length", int(&reply)?)
    }

    pub(crate) async fn destroy(&self) -> Result<(), Error> {
        self.run(&self.scripts.destroy, &[]).await.map(drop)
    }
}

/// Refuses a Redis older than [`OLDEST`], by the `redis_version` line of
/// `INFO server`; a reply without one passes.
fn check_version(info: &str) -> Result<(), Error> {
    let Some(version) = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
    else {
        return Ok(());
    };
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    if (major, minor) < OLDEST {
        return Err(Error::Database {
            backend: BACKEND,
            detail: format!(
                "Redis {version} is too old: the catalog needs Redis {}.{} or later \
                 (its scripts read TIME, then write)",
                OLDEST.0, OLDEST.1
            ),
        });
    }
    Ok(())
}

/// Sorts the client's errors into ours: out of reach, or anything else.
///
/// A server that cannot take writes now is out of reach too: a replica
/// (`READONLY`: a primary demoted by a failover keeps its connections open
/// and refuses every write), one loading its data (`LOADING`) or one whose
/// primary is gone (`MASTERDOWN`). The connection is then forgotten, so the
/// next call connects again and finds the primary the address now names.
fn failed(err: redis::RedisError) -> Error {
    if let Some(code) = not_writable(&err) {
        return Error::Unavailable {
            backend: BACKEND,
            detail: format!("the server takes no writes now ({code}: a replica?): {err}"),
        };
    }
    if err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_timeout()
        || err.is_unrecoverable_error()
    {
        Error::Unavailable {
            backend: BACKEND,
            detail: err.to_string(),
        }
    } else {
        Error::Database {
            backend: BACKEND,
            detail: err.to_string(),
        }
    }
}

/// The code of an error that says the server takes no writes now, if `err`
/// is one. Redis 7 answers a write refused inside a script with the write's
/// own error; before 7 a script's failure is an `ERR Error running script`
/// that quotes it (`... -READONLY You can't write against a read only
/// replica.`).
fn not_writable(err: &redis::RedisError) -> Option<&'static str> {
    use redis::{ErrorKind, ServerErrorKind};
    const CODES: [(ServerErrorKind, &str); 3] = [
        (ServerErrorKind::ReadOnly, "READONLY"),
        (ServerErrorKind::BusyLoading, "LOADING"),
        (ServerErrorKind::MasterDown, "MASTERDOWN"),
    ];
    let quoted = |code: &str| {
        err.kind() == ErrorKind::Server(ServerErrorKind::ResponseError)
            && err
                .detail()
                .is_some_and(|detail| detail.contains(&format!("-{code} ")))
    };
    CODES
        .iter()
        .find(|(kind, code)| err.kind() == ErrorKind::Server(*kind) || quoted(code))
        .map(|(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_refused_inside_a_script_before_redis_7_is_unavailable() {
        use redis::{ErrorKind, RedisError, ServerErrorKind};
        let response = ErrorKind::Server(ServerErrorKind::ResponseError);
        let quoting = |what: &str| {
            RedisError::from((
                response,
                "An error was signalled by the server",
                format!(
                    "Error running script (call to f_1b2c): @user_script:12: \
                     @user_script: 12: -{what}"
                ),
            ))
        };
        let replica = quoting("READONLY You can't write against a read only replica.");
        match failed(replica) {
            Error::Unavailable { detail, .. } => {
                assert!(detail.contains("takes no writes now (READONLY"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
        let loading = quoting("LOADING Redis is loading the dataset in memory");
        assert!(matches!(failed(loading), Error::Unavailable { .. }));
        let own = RedisError::from((ErrorKind::Server(ServerErrorKind::ReadOnly), "readonly"));
        assert!(matches!(failed(own), Error::Unavailable { .. }));
        // A script's own failure that merely mentions the word is not one.
        let other = quoting("ERR wrong number of arguments, READONLY mentioned");
        assert!(matches!(failed(other), Error::Database { .. }));
    }

    #[test]
    fn redis_before_5_is_refused_at_open() {
        for old in ["3.2.12", "4.0.14"] {
            let info = format!("# Server\r\nredis_version:{old}\r\nredis_mode:standalone\r\n");
            match check_version(&info) {
                Err(Error::Database { detail, .. }) => {
                    assert!(
                        detail.contains(old) && detail.contains("Redis 5.0"),
                        "{detail}"
                    )
                }
                other => panic!("{old}: {other:?}"),
            }
        }
        for fine in ["5.0.0", "7.0.15", "10.2.1", "", "unknown"] {
            let info = format!("# Server\r\nredis_version:{fine}\r\n");
            assert_eq!(check_version(&info), Ok(()), "{fine}");
        }
        assert_eq!(check_version("# Server\r\n"), Ok(()));
    }
}
