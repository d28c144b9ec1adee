//! The SQLite side of the catalog's file: opening it (WAL mode, busy
//! timeout, tables), noticing it removed or replaced, running calls on the
//! blocking pool, and sorting SQLite's errors into ours.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::BACKEND;
use crate::Error;

/// The tables; `queues` keeps each recipient's message count with every
/// enqueue and ack, so that checking the bound does not count the queue.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    incarnation INTEGER NOT NULL,
    addr TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS interest (
    session TEXT NOT NULL,
    filter TEXT NOT NULL,
    node TEXT NOT NULL,
    grp TEXT,
    qos INTEGER NOT NULL,
    PRIMARY KEY (session, filter)
);
CREATE TABLE IF NOT EXISTS offline (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    meta BLOB NOT NULL,
    origin_node TEXT NOT NULL,
    origin_incarnation INTEGER NOT NULL,
    origin_seq INTEGER NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    UNIQUE (recipient, origin_node, origin_incarnation, origin_seq)
);
CREATE INDEX IF NOT EXISTS offline_by_recipient ON offline (recipient, id);
CREATE INDEX IF NOT EXISTS offline_by_expiry ON offline (recipient, expires_ms)
    WHERE expires_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS queues (
    recipient TEXT PRIMARY KEY,
    len INTEGER NOT NULL
);
";

/// Opens `path` (creating it if `create` says so), in WAL mode with the busy
/// timeout (how long a writer waits for another process's write to finish:
/// the call timeout), and makes sure the tables exist.
///
/// Opening is tried again until the busy timeout passes while SQLite says
/// the file is busy: processes that open a new file at once each switch it
/// to WAL, and SQLite answers one of two connections that both hold a read
/// lock and want the exclusive one "busy" at once, without its busy handler
/// (waiting could deadlock them), so the timeout alone does not cover it.
pub(super) fn connect(
    path: &Path,
    create: OpenFlags,
    busy_timeout: Duration,
) -> Result<Connection, Error> {
    let deadline = Instant::now() + busy_timeout;
    loop {
        match open_once(path, create, busy_timeout) {
            Err(Opening::Busy(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(Opening::Busy(err)) => return Err(failed(err)),
            Err(Opening::Failed(err)) => return Err(err),
            Ok(conn) => return Ok(conn),
        }
    }
}

/// Why one try at opening failed.
enum Opening {
    /// SQLite said the file is busy or locked.
    Busy(rusqlite::Error),
    Failed(Error),
}

impl From<rusqlite::Error> for Opening {
    fn from(err: rusqlite::Error) -> Opening {
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Opening::Busy(err),
            _ => Opening::Failed(failed(err)),
        }
    }
}

fn open_once(
    path: &Path,
    create: OpenFlags,
    busy_timeout: Duration,
) -> Result<Connection, Opening> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | create;
    let conn = Connection::open_with_flags(path, flags).map_err(|err| {
        Opening::Failed(unavailable(format!(
            "cannot open {}: {}",
            path.display(),
            detail(&err)
        )))
    })?;
    conn.busy_timeout(busy_timeout)?;
    // Every commit synced: an enqueue or ack that returned survives a power
    // cut (the heartbeat's renewal only runs `unsynced`).
    conn.pragma_update(None, "synchronous", "FULL")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Opening::Failed(Error::Database {
            backend: BACKEND,
            detail: format!("{} stays in journal mode {mode}, not WAL", path.display()),
        }));
    }
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))?;
    Ok(conn)
}

/// Runs `f` on `conn` with its commits not synced (`synchronous = NORMAL`),
/// then every commit synced again (`FULL`), for writes that may be lost in
/// a power cut: in WAL mode such a commit is appended to the log but not
/// fsynced, and becomes durable with the next synced commit (which syncs
/// the whole log) or checkpoint; a power cut may roll it back, never tear
/// it or the file. The heartbeat's renewal is such a write (see
/// `SqliteCatalog::heartbeat`).
///
/// If `FULL` cannot be set again, the call fails as unavailable, which
/// makes the catalog drop the connection rather than keep writing unsynced.
pub(super) fn unsynced<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(failed)?;
    let result = f(conn);
    if let Err(err) = conn.pragma_update(None, "synchronous", "FULL") {
        return Err(unavailable(format!(
            "cannot sync commits again: {}",
            detail(&err)
        )));
    }
    result
}

pub(super) async fn blocking<T, F>(f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|err| Error::Database {
            backend: BACKEND,
            detail: format!("the blocking task failed: {err}"),
        })?
}

pub(super) fn unavailable(detail: String) -> Error {
    Error::Unavailable {
        backend: BACKEND,
        detail,
    }
}

/// Column `i` of a row read: a value SQLite holds as another type than
/// `T` makes the row malformed (SQLite keeps any type a column is given).
pub(super) fn get<T: rusqlite::types::FromSql>(
    row: &rusqlite::Row<'_>,
    i: usize,
) -> Result<T, Error> {
    row.get(i).map_err(|err| Error::Malformed(err.to_string()))
}

/// Sorts SQLite's errors into ours.
pub(super) fn failed(err: rusqlite::Error) -> Error {
    use rusqlite::Error as E;
    match &err {
        E::SqliteFailure(code, _) => match code.code {
            ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::DiskFull => unavailable(detail(&err)),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => Error::Malformed(detail(&err)),
            _ => Error::Database {
                backend: BACKEND,
                detail: detail(&err),
            },
        },
        E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::IntegralValueOutOfRange(..) => Error::Malformed(detail(&err)),
        _ => Error::Database {
            backend: BACKEND,
            detail: detail(&err),
        },
    }
}

fn detail(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(code, Some(message)) => {
            format!("{message} ({:?})", code.code)
        }
        other => other.to_string(),
    }
}

/// Which file a path names, to notice it being removed or replaced: its
/// device and inode.
#[cfg(unix)]
pub(super) type FileId = (u64, u64);
/// Windows does not let an open file be removed; its creation time tells a
/// file put in its place.
#[cfg(windows)]
pub(super) type FileId = u64;

pub(super) fn file_id(path: &Path) -> Result<FileId, Error> {
    let meta =
        std::fs::metadata(path).map_err(|err| unavailable(format!("{}: {err}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((meta.dev(), meta.ino()))
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::MetadataExt;
        Ok(meta.creation_time())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn unsynced_runs_at_normal_and_syncs_every_commit_again() {
        let dir = std::env::temp_dir().join(format!("mq-catalog-unsynced-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("catalog.db");
        let conn = connect(&path, OpenFlags::SQLITE_OPEN_CREATE, Duration::from_secs(1)).unwrap();
        // 2 is FULL, 1 NORMAL.
        assert_eq!(synchronous(&conn), 2);
        let inside = unsynced(&conn, |conn| Ok(synchronous(conn))).unwrap();
        assert_eq!(inside, 1);
        assert_eq!(synchronous(&conn), 2);
        // A failed write leaves the connection synced too.
        let failed: Result<(), Error> = unsynced(&conn, |_| Err(Error::Invalid("a test".into())));
        assert!(failed.is_err());
        assert_eq!(synchronous(&conn), 2);
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
