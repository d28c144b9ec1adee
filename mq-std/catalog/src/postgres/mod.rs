//! The catalog in PostgreSQL, across machines: one schema per namespace,
//! times from the server's `now()`, one connection (statements prepared once
//! per connection) opened again on the call after it broke. Enqueueing and
//! acking are one call each of a PL/pgSQL function that locks the
//! recipient's row of message counts, so that two nodes enqueueing for one
//! recipient cannot both pass its bound, and the bound is checked without
//! counting the queue.

mod schema;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, GenericClient, NoTls, Row, Statement};

use crate::model::{
    self, Enqueued, Envelope, Interest, Interests, Node, Nodes, Offline, Options, Origin, Page,
    Unreadable,
};
use crate::{Error, Registration};
use schema::SCHEMA;

const BACKEND: &str = "postgres";

/// How long the connection may be idle before the kernel probes it, and
/// between probes: a server gone silently is noticed in about a minute
/// even between calls, rather than after the default two hours.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// The counter row serializes registrations; the node row takes the new
/// incarnation only if it is newer than the row's: of two registrations
/// racing, the later incarnation wins and the earlier is fenced at once.
const REGISTER: &str = "
WITH inc AS (
    INSERT INTO counters (name, value)
    VALUES ('incarnation', (extract(epoch FROM now()) * 1000000)::bigint)
    ON CONFLICT (name) DO UPDATE
    SET value = greatest(counters.value + 1, excluded.value)
    RETURNING value AS n
),
up AS (
    INSERT INTO nodes (id, incarnation, addr, expires_ms)
    SELECT $1, n, $2, now_ms() + $3 FROM inc
    ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation,
        addr = excluded.addr, expires_ms = excluded.expires_ms
    WHERE nodes.incarnation < excluded.incarnation
)
SELECT n FROM inc";
const HEARTBEAT: &str = "UPDATE nodes SET expires_ms = now_ms() + $3
    WHERE id = $1 AND incarnation = $2 AND expires_ms > now_ms()";
const INCARNATION: &str = "SELECT incarnation FROM nodes WHERE id = $1";
const DEREGISTER: &str = "DELETE FROM nodes WHERE id = $1 AND incarnation <= $2";
const LIVE_NODES: &str = "SELECT id, incarnation, addr, expires_ms FROM nodes
    WHERE expires_ms > now_ms() ORDER BY id COLLATE \"C\"";
const REAP: &str = "DELETE FROM nodes WHERE expires_ms <= now_ms()";
const ADD_INTEREST: &str = "INSERT INTO interest (session, filter, node, grp, qos)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (session, filter) DO UPDATE SET node = excluded.node,
        grp = excluded.grp, qos = excluded.qos";
const REMOVE_INTEREST: &str = "DELETE FROM interest WHERE session = $1 AND filter = $2";
const FORGET_SESSION: &str = "DELETE FROM interest WHERE session = $1";
const INTERESTS: &str = "SELECT session, filter, node, grp, qos FROM interest
    ORDER BY session COLLATE \"C\", filter COLLATE \"C\"";
/// One statement, so one round trip: the function locks the recipient's
/// row in `queues` (its message count), drops expired messages, looks for
/// the origin, checks the bound and inserts. `{1, id}` stored, `{2, id}`
/// duplicate, `{3}` full.
const ENQUEUE: &str = "SELECT enqueue($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const QUEUE_LEN: &str = "SELECT count(*) FROM offline
    WHERE recipient = $1 AND (expires_ms IS NULL OR expires_ms > now_ms())";
const READ: &str = "SELECT id, topic, payload, meta, origin_node, origin_incarnation, origin_seq,
        enqueued_ms, expires_ms
    FROM offline
    WHERE recipient = $1 AND id > $2 AND (expires_ms IS NULL OR expires_ms > now_ms())
    ORDER BY id LIMIT $3";
const ACK: &str = "SELECT ack($1, $2)";

pub(crate) struct PostgresCatalog {
    config: Config,
    /// The namespace quoted as an identifier.
    schema: String,
    queue_limit: i64,
    timeout: Duration,
    conn: Mutex<Option<Conn>>,
}

/// A connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    async fn statement(&mut self, sql: &'static str) -> Result<Statement, Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await.map_err(failed)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    async fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, params).await.map_err(failed)
    }

    async fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        let statement = self.statement(sql).await?;
        self.client
            .execute(&statement, params)
            .await
            .map_err(failed)
    }
}

impl PostgresCatalog {
    pub(crate) async fn open(url: &str, options: Options) -> Result<PostgresCatalog, Error> {
        let mut config: Config = url
            .parse()
            .map_err(|err| Error::Url(format!("`{url}`: {err}")))?;
        if config.get_user().is_none() {
            return Err(Error::Url(format!(
                "`{url}` names no user: postgres://USER@HOST:PORT/DB"
            )));
        }
        let name = options.namespace;
        if name.starts_with("pg_") {
            return Err(Error::Invalid(format!(
                "namespace `{name}`: PostgreSQL reserves schema names starting with pg_"
            )));
        }
        // The namespace is lowercase letters, digits and `_` (checked):
        // quoted, it is itself, keywords included.
        let schema = format!("\"{name}\"");
        let timeout = options.call_timeout;
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE)
            .keepalives_interval(KEEPALIVE)
            .keepalives_retries(2)
            .tcp_user_timeout(timeout.max(KEEPALIVE))
            .options(format!("-c search_path={schema}"));
        let catalog = PostgresCatalog {
            config,
            queue_limit: model::signed("queue_limit", options.queue_limit)?,
            timeout,
            conn: Mutex::new(None),
            schema,
        };
        let sql = SCHEMA
            .replace("{schema}", &catalog.schema)
            .replace("{name}", &name);
        catalog
            .with(async |conn| {
                let tx = conn.client.transaction().await.map_err(failed)?;
                tx.batch_execute(&sql).await.map_err(failed)?;
                tx.commit().await.map_err(failed)
            })
            .await?;
        Ok(catalog)
    }

    /// The connection in `slot`, opened first if there is none or it closed.
    async fn connected<'a>(&self, slot: &'a mut Option<Conn>) -> Result<&'a mut Conn, Error> {
        if slot.as_ref().is_some_and(|conn| conn.client.is_closed()) {
            *slot = None;
        }
        if slot.is_none() {
            let (client, connection) = self.config.connect(NoTls).await.map_err(failed)?;
            // The connection task ends when the server goes away; the client
            // then reports itself closed and the next call connects again.
            tokio::spawn(connection);
            *slot = Some(Conn {
                client,
                statements: HashMap::new(),
            });
        }
        Ok(slot.as_mut().expect("connected just above"))
    }

    /// Runs `f` on the connection, connecting first if needed, within the
    /// call timeout; forgets the connection if the server went away or did
    /// not answer in time (a statement cut short leaves it mid-exchange), so
    /// that the next call connects again.
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut Conn) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // One deadline for waiting behind another call and for this one: a
        // heartbeat queued behind calls to a silent server fails in time too.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let late = |waiting: &str| Error::Unavailable {
            backend: BACKEND,
            detail: format!("no answer within {:?}{waiting}", self.timeout),
        };
        let mut slot = tokio::time::timeout_at(deadline, self.conn.lock())
            .await
            .map_err(|_| late(" (waiting behind another call)"))?;
        let call = async {
            let conn = self.connected(&mut slot).await?;
            f(conn).await
        };
        let result = tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or_else(|_| Err(late("")));
        if matches!(result, Err(Error::Unavailable { .. })) {
            *slot = None;
        }
        result
    }

    pub(crate) async fn register(
        &self,
        node: &str,
        addr: &str,
        lease: i64,
    ) -> Result<Registration, Error> {
        self.with(async |conn| {
            let rows = conn.query(REGISTER, &[&node, &addr, &lease]).await?;
            let incarnation: i64 = get(first(&rows)?, 0)?;
            Ok(Registration {
                node: node.to_owned(),
                incarnation: model::unsigned("incarnation", incarnation)?,
            })
        })
        .await
    }

    pub(crate) async fn heartbeat(&self, node: &str, held: i64, lease: i64) -> Result<(), Error> {
        self.with(async |conn| {
            if conn.execute(HEARTBEAT, &[&node, &held, &lease]).await? == 1 {
                return Ok(());
            }
            let rows = conn.query(INCARNATION, &[&node]).await?;
            let current = rows.first().map(|row| get(row, 0)).transpose()?;
            Err(model::refused(node.to_owned(), held, current))
        })
        .await
    }

    pub(crate) async fn deregister(&self, node: &str, held: i64) -> Result<(), Error> {
        self.with(async |conn| {
            conn.execute(DEREGISTER, &[&node, &held]).await?;
            let rows = conn.query(INCARNATION, &[&node]).await?;
            match rows.first() {
                Some(row) => Err(model::fenced(node.to_owned(), held, get(row, 0)?)),
                None => Ok(()),
            }
        })
        .await
    }

    pub(crate) async fn live_nodes(&self) -> Result<Nodes, Error> {
        self.with(async |conn| {
            let mut listed = Nodes::default();
            for row in conn.query(LIVE_NODES, &[]).await? {
                let id: String = get(&row, 0)?;
                let decoded = (|| {
                    Ok(Node {
                        id: id.clone(),
                        incarnation: model::unsigned("incarnation", get(&row, 1)?)?,
                        addr: get(&row, 2)?,
                        lease_expires: model::time_of(get(&row, 3)?)?,
                    })
                })();
                listed.push(id, decoded);
            }
            Ok(listed)
        })
        .await
    }

    pub(crate) async fn reap_expired(&self) -> Result<u64, Error> {
        self.with(async |conn| conn.execute(REAP, &[]).await).await
    }

    pub(crate) async fn add_interest(&self, interest: &Interest) -> Result<(), Error> {
        let qos = model::qos_code(interest.qos);
        self.with(async |conn| {
            let params: [&(dyn ToSql + Sync); 5] = [
                &interest.session,
                &interest.filter,
                &interest.node,
                &interest.group,
                &qos,
            ];
            conn.execute(ADD_INTEREST, &params).await.map(drop)
        })
        .await
    }

    pub(crate) async fn remove_interest(&self, session: &str, filter: &str) -> Result<bool, Error> {
        self.with(async |conn| Ok(conn.execute(REMOVE_INTEREST, &[&session, &filter]).await? > 0))
            .await
    }

    pub(crate) async fn forget_session(&self, session: &str) -> Result<u64, Error> {
        self.with(async |conn| conn.execute(FORGET_SESSION, &[&session]).await)
            .await
    }

    pub(crate) async fn interests(&self) -> Result<Interests, Error> {
        self.with(async |conn| {
            let mut listed = Interests::default();
            for row in conn.query(INTERESTS, &[]).await? {
                let (session, filter): (String, String) = (get(&row, 0)?, get(&row, 1)?);
                let decoded = (|| {
                    Ok(Interest {
                        node: get(&row, 2)?,
                        group: get(&row, 3)?,
                        qos: model::qos_of(get::<i16>(&row, 4)?.into())?,
                        session: session.clone(),
                        filter: filter.clone(),
                    })
                })();
                listed.push(session, filter, decoded);
            }
            Ok(listed)
        })
        .await
    }

    pub(crate) async fn enqueue_all(
        &self,
        recipient: &str,
        messages: &[Envelope],
    ) -> Result<Vec<Result<Enqueued, Error>>, Error> {
        let limit = self.queue_limit;
        self.with(async |conn| {
            let statement = conn.statement(ENQUEUE).await?;
            let tx = conn.client.transaction().await.map_err(failed)?;
            // Sent at once, executed in order: one round trip for the run.
            let calls = (messages.iter())
                .map(|message| enqueue_with(&tx, &statement, recipient, limit, message));
            let answers = futures_util::future::try_join_all(calls).await?;
            tx.commit().await.map_err(failed)?;
            Ok(answers)
        })
        .await
    }

    pub(crate) async fn read(&self, recipient: &str, after: i64, max: i64) -> Result<Page, Error> {
        self.with(async |conn| {
            let mut page = Page::default();
            for row in conn.query(READ, &[&recipient, &after, &max]).await? {
                let id = model::unsigned("id", get(&row, 0)?)?;
                match offline_row(id, &row) {
                    Ok(message) => page.messages.push(message),
                    Err(reason) => page.unreadable.push(Unreadable { id, reason }),
                }
            }
            Ok(page)
        })
        .await
    }

    pub(crate) async fn ack(&self, recipient: &str, ids: &[i64]) -> Result<u64, Error> {
        self.with(async |conn| {
            let rows = conn.query(ACK, &[&recipient, &ids]).await?;
            model::unsigned("acked", get(first(&rows)?, 0)?)
        })
        .await
    }

    pub(crate) async fn queue_len(&self, recipient: &str) -> Result<u64, Error> {
        self.with(async |conn| {
            let rows = conn.query(QUEUE_LEN, &[&recipient]).await?;
            model::unsigned("queue length", get(first(&rows)?, 0)?)
        })
        .await
    }

    pub(crate) async fn destroy(&self) -> Result<(), Error> {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        self.with(async |conn| conn.client.batch_execute(&sql).await.map_err(failed))
            .await
    }
}

/// The message of the row `id`, or why it cannot be decoded.
fn offline_row(id: u64, row: &Row) -> Result<Offline, Error> {
    Ok(Offline {
        id,
        topic: get(row, 1)?,
        payload: get(row, 2)?,
        meta: get(row, 3)?,
        origin: Origin {
            node: get(row, 4)?,
            incarnation: model::unsigned("origin incarnation", get(row, 5)?)?,
            seq: model::unsigned("origin sequence", get(row, 6)?)?,
        },
        enqueued_at: model::time_of(get(row, 7)?)?,
        expires_at: get::<Option<i64>>(row, 8)?
            .map(model::time_of)
            .transpose()?,
    })
}

fn first(rows: &[Row]) -> Result<&Row, Error> {
    rows.first()
        .ok_or_else(|| Error::Malformed("a query that returns a row returned none".to_owned()))
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, Error> {
    row.try_get(index)
        .map_err(|err| Error::Malformed(format!("column {index}: {err}")))
}

/// Sorts the client's errors into ours: the server out of reach (no answer,
/// connection lost, shutting down), or anything else it said.
fn failed(err: tokio_postgres::Error) -> Error {
    let unreachable = match err.as_db_error() {
        None => true,
        Some(db) => {
            // 08: the connection failed; 57P: the server shuts down or
            // starts; 25006: a read-only transaction, as on a standby (a
            // primary demoted by a failover): connecting again finds the
            // primary the address now names.
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P") || code == "25006"
        }
    };
    let detail = match err.as_db_error() {
        Some(db) => db.to_string(),
        None => match std::error::Error::source(&err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    };
    let detail = if err.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION) {
        format!("the server takes no writes now (a standby?): {detail}")
    } else {
        detail
    };
    if unreachable {
        Error::Unavailable {
            backend: BACKEND,
            detail,
        }
    } else {
        Error::Database {
            backend: BACKEND,
            detail,
        }
    }
}

/// Calls the `enqueue` function for `message` on `client` (a connection,
/// or a transaction on it): its answer, or an error of the call.
async fn enqueue_with(
    client: &impl GenericClient,
    statement: &Statement,
    recipient: &str,
    limit: i64,
    message: &Envelope,
) -> Result<Result<Enqueued, Error>, Error> {
    let ttl = model::ttl_ms(message.ttl)?;
    let origin = &message.origin;
    let (incarnation, seq) = (origin.incarnation as i64, origin.seq as i64);
    let params: [&(dyn ToSql + Sync); 9] = [
        &recipient,
        &limit,
        &origin.node,
        &incarnation,
        &seq,
        &message.topic,
        &message.payload,
        &message.meta,
        &ttl,
    ];
    let rows = client.query(statement, &params).await.map_err(failed)?;
    Ok(match get::<Vec<i64>>(first(&rows)?, 0)?.as_slice() {
        [1, id] => Ok(Enqueued::Stored(model::unsigned("id", *id)?)),
        [2, id] => Ok(Enqueued::Duplicate(model::unsigned("id", *id)?)),
        [3] => Err(Error::QueueFull {
            recipient: recipient.to_owned(),
            limit: limit as u64,
        }),
        other => return Err(Error::Malformed(format!("enqueue answered {other:?}"))),
    })
}
