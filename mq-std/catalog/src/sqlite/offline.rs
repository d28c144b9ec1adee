//! The SQLite catalog's offline queues: messages stored for a recipient
//! that is away (a run of them in one transaction), read in order, acked.

use rusqlite::{OptionalExtension, Row, TransactionBehavior};

use super::connection::{failed, get};
use super::{SqliteCatalog, now_ms};
use crate::Error;
use crate::model::{self, Enqueued, Envelope, Offline, Origin, Page, Unreadable};

impl SqliteCatalog {
    pub(crate) async fn enqueue_all(
        &self,
        recipient: &str,
        messages: &[Envelope],
    ) -> Result<Vec<Result<Enqueued, Error>>, Error> {
        let (recipient, messages) = (recipient.to_owned(), messages.to_vec());
        let limit = self.queue_limit;
        self.call(move |conn| {
            let now = now_ms();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed)?;
            let expired = tx
                .execute(
                    "DELETE FROM offline WHERE recipient = ?1 AND expires_ms <= ?2",
                    (&recipient, now),
                )
                .map_err(failed)? as i64;
            let before: i64 = tx
                .query_row(
                    "SELECT len FROM queues WHERE recipient = ?1",
                    [&recipient],
                    |row| row.get(0),
                )
                .optional()
                .map_err(failed)?
                .unwrap_or(0)
                - expired;
            let mut queue = Queue {
                recipient: &recipient,
                len: before,
                limit,
                now,
            };
            let answers = (messages.iter())
                .map(|m| queue.enqueue(&tx, m))
                .collect::<Result<Vec<_>, Error>>()?;
            if queue.len != before || expired > 0 {
                tx.execute(
                    "INSERT INTO queues (recipient, len) VALUES (?1, ?2)
                     ON CONFLICT (recipient) DO UPDATE SET len = excluded.len",
                    (&recipient, queue.len),
                )
                .map_err(failed)?;
            }
            tx.commit().map_err(failed)?;
            Ok(answers)
        })
        .await
    }

    pub(crate) async fn read(&self, recipient: &str, after: i64, max: i64) -> Result<Page, Error> {
        let recipient = recipient.to_owned();
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, topic, payload, meta, origin_node, origin_incarnation, origin_seq,
                         enqueued_ms, expires_ms
                     FROM offline
                     WHERE recipient = ?1 AND id > ?2 AND (expires_ms IS NULL OR expires_ms > ?3)
                     ORDER BY id LIMIT ?4",
                )
                .map_err(failed)?;
            let mut rows = stmt
                .query((&recipient, after, now_ms(), max))
                .map_err(failed)?;
            let mut page = Page::default();
            while let Some(row) = rows.next().map_err(failed)? {
                let id = model::unsigned("id", row.get(0).map_err(failed)?)?;
                match offline_row(id, row) {
                    Ok(message) => page.messages.push(message),
                    Err(reason) => page.unreadable.push(Unreadable { id, reason }),
                }
            }
            Ok(page)
        })
        .await
    }

    pub(crate) async fn ack(&self, recipient: &str, ids: &[i64]) -> Result<u64, Error> {
        let (recipient, ids) = (recipient.to_owned(), ids.to_vec());
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed)?;
            let mut gone = 0;
            {
                let mut stmt = tx
                    .prepare_cached("DELETE FROM offline WHERE recipient = ?1 AND id = ?2")
                    .map_err(failed)?;
                for id in ids {
                    gone += stmt.execute((&recipient, id)).map_err(failed)? as i64;
                }
            }
            tx.execute(
                "UPDATE queues SET len = len - ?2 WHERE recipient = ?1",
                (&recipient, gone),
            )
            .map_err(failed)?;
            tx.commit().map_err(failed)?;
            Ok(gone as u64)
        })
        .await
    }

    pub(crate) async fn queue_len(&self, recipient: &str) -> Result<u64, Error> {
        let recipient = recipient.to_owned();
        self.call(move |conn| {
            let len: i64 = conn
                .query_row(
                    "SELECT count(*) FROM offline
                     WHERE recipient = ?1 AND (expires_ms IS NULL OR expires_ms > ?2)",
                    (&recipient, now_ms()),
                    |row| row.get(0),
                )
                .map_err(failed)?;
            model::unsigned("queue length", len)
        })
        .await
    }
}

/// The message of the row `id`, or why it cannot be decoded.
fn offline_row(id: u64, row: &Row<'_>) -> Result<Offline, Error> {
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

/// One recipient's queue within an enqueue's transaction.
struct Queue<'a> {
    recipient: &'a str,
    /// Its length, counting what this transaction stored.
    len: i64,
    limit: i64,
    now: i64,
}

impl Queue<'_> {
    /// Stores `message` unless the queue has it or is full: the answer, or
    /// an error of the database (which ends the transaction).
    fn enqueue(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        message: &Envelope,
    ) -> Result<Result<Enqueued, Error>, Error> {
        let origin = &message.origin;
        let earlier: Option<i64> = tx
            .query_row(
                "SELECT id FROM offline WHERE recipient = ?1 AND origin_node = ?2
                 AND origin_incarnation = ?3 AND origin_seq = ?4",
                (
                    self.recipient,
                    &origin.node,
                    origin.incarnation as i64,
                    origin.seq as i64,
                ),
                |row| row.get(0),
            )
            .optional()
            .map_err(failed)?;
        if let Some(id) = earlier {
            return Ok(Ok(Enqueued::Duplicate(model::unsigned("id", id)?)));
        }
        if self.len >= self.limit {
            return Ok(Err(Error::QueueFull {
                recipient: self.recipient.to_owned(),
                limit: self.limit as u64,
            }));
        }
        let ttl = model::ttl_ms(message.ttl)?;
        tx.prepare_cached(
            "INSERT INTO offline (recipient, topic, payload, meta, origin_node,
                 origin_incarnation, origin_seq, enqueued_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut insert| {
            insert.execute((
                self.recipient,
                &message.topic,
                &message.payload,
                &message.meta,
                &origin.node,
                origin.incarnation as i64,
                origin.seq as i64,
                self.now,
                ttl.map(|ttl| self.now.saturating_add(ttl)),
            ))
        })
        .map_err(failed)?;
        self.len += 1;
        Ok(Ok(Enqueued::Stored(model::unsigned(
            "id",
            tx.last_insert_rowid(),
        )?)))
    }
}
