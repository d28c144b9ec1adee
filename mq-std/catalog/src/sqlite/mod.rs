//! The catalog in one SQLite file, the embedded default: the nodes of one
//! machine share the file (WAL mode, so readers do not wait for the writer;
//! a busy timeout, so writers wait for each other rather than fail). Times
//! are the callers' wall clock, which the nodes of one machine share.
//!
//! Each call runs on tokio's blocking pool. Before each call the file at the
//! path must still be the one opened: removed or replaced, the call fails
//! with [`Error::Unavailable`], and the next call opens whatever is at the
//! path then, without creating it (an empty new catalog would forget every
//! queue silently).

mod connection;
mod offline;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use connection::{FileId, blocking, connect, failed, file_id, get, unavailable, unsynced};

use crate::model::{self, Interest, Interests, Node, Nodes, Options};
use crate::{Error, Registration};

pub(crate) const BACKEND: &str = "sqlite";

const DROP: &str = "
DROP TABLE IF EXISTS counters;
DROP TABLE IF EXISTS nodes;
DROP TABLE IF EXISTS interest;
DROP TABLE IF EXISTS offline;
DROP TABLE IF EXISTS queues;
";

pub(crate) struct SqliteCatalog {
    path: PathBuf,
    queue_limit: i64,
    busy_timeout: Duration,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// The connection and the file it opened.
    conn: Option<(Connection, FileId)>,
}

impl SqliteCatalog {
    pub(crate) async fn open(path: &str, options: Options) -> Result<SqliteCatalog, Error> {
        if options.namespace != model::DEFAULT_NAMESPACE {
            return Err(Error::Invalid(format!(
                "namespace `{}`: a SQLite catalog's namespace is its file; use another file",
                options.namespace
            )));
        }
        if path.is_empty() {
            return Err(Error::Url("sqlite: names no file (sqlite:PATH)".to_owned()));
        }
        let queue_limit = model::signed("queue_limit", options.queue_limit)?;
        let busy_timeout = options.call_timeout;
        let path = PathBuf::from(path);
        let state = blocking({
            let path = path.clone();
            move || {
                let conn = connect(&path, OpenFlags::SQLITE_OPEN_CREATE, busy_timeout)?;
                Ok(State {
                    conn: Some((conn, file_id(&path)?)),
                })
            }
        })
        .await?;
        Ok(SqliteCatalog {
            path,
            queue_limit,
            busy_timeout,
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// Runs `f` on the connection in the blocking pool, reconnecting first if
    /// an earlier call lost it; forgets the connection if the file went away.
    async fn call<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        let path = self.path.clone();
        let busy_timeout = self.busy_timeout;
        blocking(move || {
            let mut state = state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let current = file_id(&path);
            match (&state.conn, &current) {
                (Some((_, opened)), Ok(now)) if opened == now => {}
                (Some(_), _) => {
                    // Removed or replaced under us: say so once, and let
                    // the next call open whatever is at the path now.
                    state.conn = None;
                    let what = if current.is_ok() {
                        "replaced"
                    } else {
                        "removed"
                    };
                    return Err(unavailable(format!(
                        "{} was {what} since it was opened",
                        path.display()
                    )));
                }
                (None, _) => {
                    let conn = connect(&path, OpenFlags::empty(), busy_timeout)?;
                    state.conn = Some((conn, file_id(&path)?));
                }
            }
            let (conn, _) = state.conn.as_mut().expect("connected just above");
            let result = f(conn);
            if matches!(result, Err(Error::Unavailable { .. })) {
                state.conn = None;
            }
            result
        })
        .await
    }

    pub(crate) async fn register(
        &self,
        node: &str,
        addr: &str,
        lease: i64,
    ) -> Result<Registration, Error> {
        let (node, addr) = (node.to_owned(), addr.to_owned());
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed)?;
            let now = now_ms();
            let incarnation: i64 = tx
                .query_row(
                    "INSERT INTO counters (name, value) VALUES ('incarnation', ?1)
                     ON CONFLICT (name) DO UPDATE SET value = max(value + 1, ?1)
                     RETURNING value",
                    [now_us()],
                    |row| row.get(0),
                )
                .map_err(failed)?;
            tx.execute(
                "INSERT INTO nodes (id, incarnation, addr, expires_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation,
                     addr = excluded.addr, expires_ms = excluded.expires_ms",
                (&node, incarnation, &addr, now.saturating_add(lease)),
            )
            .map_err(failed)?;
            tx.commit().map_err(failed)?;
            Ok(Registration {
                node,
                incarnation: model::unsigned("incarnation", incarnation)?,
            })
        })
        .await
    }

    pub(crate) async fn heartbeat(&self, node: &str, held: i64, lease: i64) -> Result<(), Error> {
        let node = node.to_owned();
        self.call(move |conn| {
            let now = now_ms();
            // Unsynced (no fsync, which was most of an idle peer's disk
            // work): a renewal lost in a power cut leaves the expiry it
            // replaced, so the lease ends earlier, never later, and the
            // node's processes on this machine died in that cut anyway.
            // The incarnation is only ever written by `register`, synced,
            // so fencing is untouched.
            let renewed = unsynced(conn, |conn| {
                conn.execute(
                    "UPDATE nodes SET expires_ms = ?1
                     WHERE id = ?2 AND incarnation = ?3 AND expires_ms > ?4",
                    (now.saturating_add(lease), &node, held, now),
                )
                .map_err(failed)
            })?;
            if renewed == 1 {
                return Ok(());
            }
            let current = current_incarnation(conn, &node)?;
            Err(model::refused(node, held, current))
        })
        .await
    }

    pub(crate) async fn deregister(&self, node: &str, held: i64) -> Result<(), Error> {
        let node = node.to_owned();
        self.call(move |conn| {
            conn.execute(
                "DELETE FROM nodes WHERE id = ?1 AND incarnation <= ?2",
                (&node, held),
            )
            .map_err(failed)?;
            match current_incarnation(conn, &node)? {
                Some(current) => Err(model::fenced(node, held, current)),
                None => Ok(()),
            }
        })
        .await
    }

    pub(crate) async fn live_nodes(&self) -> Result<Nodes, Error> {
        self.call(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, incarnation, addr, expires_ms FROM nodes
                     WHERE expires_ms > ?1 ORDER BY id",
                )
                .map_err(failed)?;
            let mut rows = stmt.query([now_ms()]).map_err(failed)?;
            let mut listed = Nodes::default();
            while let Some(row) = rows.next().map_err(failed)? {
                // SQLite keeps any type: an expiry stored as text even
                // compares as later than every number, so is "live".
                let (id, bad_id) = name_of(row, 0, "id");
                let (addr, bad_addr) = name_of(row, 2, "address");
                let decoded = (|| {
                    if let Some(bad) = bad_id.or(bad_addr) {
                        return Err(bad);
                    }
                    Ok(Node {
                        id: id.clone(),
                        incarnation: model::unsigned("incarnation", get(row, 1)?)?,
                        addr,
                        lease_expires: model::time_of(get(row, 3)?)?,
                    })
                })();
                listed.push(id, decoded);
            }
            Ok(listed)
        })
        .await
    }

    pub(crate) async fn reap_expired(&self) -> Result<u64, Error> {
        self.call(|conn| {
            let gone = conn
                .execute("DELETE FROM nodes WHERE expires_ms <= ?1", [now_ms()])
                .map_err(failed)?;
            Ok(gone as u64)
        })
        .await
    }

    pub(crate) async fn add_interest(&self, interest: &Interest) -> Result<(), Error> {
        let interest = interest.clone();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO interest (session, filter, node, grp, qos) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (session, filter) DO UPDATE SET node = excluded.node,
                     grp = excluded.grp, qos = excluded.qos",
                (
                    &interest.session,
                    &interest.filter,
                    &interest.node,
                    &interest.group,
                    model::qos_code(interest.qos),
                ),
            )
            .map_err(failed)?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn remove_interest(&self, session: &str, filter: &str) -> Result<bool, Error> {
        let (session, filter) = (session.to_owned(), filter.to_owned());
        self.call(move |conn| {
            let gone = conn
                .execute(
                    "DELETE FROM interest WHERE session = ?1 AND filter = ?2",
                    (&session, &filter),
                )
                .map_err(failed)?;
            Ok(gone > 0)
        })
        .await
    }

    pub(crate) async fn forget_session(&self, session: &str) -> Result<u64, Error> {
        let session = session.to_owned();
        self.call(move |conn| {
            let gone = conn
                .execute("DELETE FROM interest WHERE session = ?1", [&session])
                .map_err(failed)?;
            Ok(gone as u64)
        })
        .await
    }

    pub(crate) async fn interests(&self) -> Result<Interests, Error> {
        self.call(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT session, filter, node, grp, qos FROM interest ORDER BY session, filter",
                )
                .map_err(failed)?;
            let mut rows = stmt.query([]).map_err(failed)?;
            let mut listed = Interests::default();
            while let Some(row) = rows.next().map_err(failed)? {
                let (session, bad_session) = name_of(row, 0, "session");
                let (filter, bad_filter) = name_of(row, 1, "filter");
                let decoded = (|| {
                    if let Some(bad) = bad_session.or(bad_filter) {
                        return Err(bad);
                    }
                    Ok(Interest {
                        node: get(row, 2)?,
                        group: get(row, 3)?,
                        qos: model::qos_of(get(row, 4)?)?,
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

    pub(crate) async fn destroy(&self) -> Result<(), Error> {
        self.call(|conn| conn.execute_batch(DROP).map_err(failed))
            .await
    }
}

impl Drop for SqliteCatalog {
    /// Closing the connection checkpoints the WAL: file I/O that belongs on
    /// the blocking pool, not on the runtime thread that drops the catalog.
    /// (A call still running holds the state; the last holder closes it.)
    fn drop(&mut self) {
        let state = std::mem::take(&mut self.state);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || drop(state));
        }
    }
}

/// Column `i` of a row, a name (an interest's session or filter, a node's
/// id or address), as text, and why it is no name if it is not: SQLite
/// keeps any value a column is given, and a BLOB written by another program
/// (or not UTF-8) makes its row unreadable, not the whole listing. (Such a
/// row matches no text in a `WHERE`, so it could not be removed by that
/// name either.)
fn name_of(row: &rusqlite::Row<'_>, i: usize, what: &str) -> (String, Option<Error>) {
    use rusqlite::types::ValueRef;
    let bad = |shown: String, why: String| {
        let e = Error::Malformed(format!("its {what} {why}"));
        (shown, Some(e))
    };
    match row.get_ref(i) {
        Ok(ValueRef::Text(t)) => match std::str::from_utf8(t) {
            Ok(t) => (t.to_owned(), None),
            Err(_) => bad(
                String::from_utf8_lossy(t).into_owned(),
                "is not UTF-8".into(),
            ),
        },
        Ok(ValueRef::Blob(b)) => bad(
            String::from_utf8_lossy(b).into_owned(),
            "is a BLOB, not text".into(),
        ),
        Ok(ValueRef::Integer(n)) => bad(n.to_string(), "is an integer, not text".into()),
        Ok(ValueRef::Real(x)) => bad(x.to_string(), "is a real, not text".into()),
        Ok(ValueRef::Null) => bad(String::new(), "is NULL, not text".into()),
        Err(e) => bad(String::new(), format!("cannot be read: {e}")),
    }
}

fn current_incarnation(conn: &Connection, node: &str) -> Result<Option<i64>, Error> {
    conn.query_row(
        "SELECT incarnation FROM nodes WHERE id = ?1",
        [node],
        |row| row.get(0),
    )
    .optional()
    .map_err(failed)
}

/// The callers' wall clock in milliseconds since the UNIX epoch.
fn now_ms() -> i64 {
    now_us() / 1000
}

/// The callers' wall clock in microseconds since the UNIX epoch.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as i64)
}
