//! Rows the catalog cannot decode, written around it with raw SQL or raw
//! Redis commands, as another program, a newer version or a Redis that
//! evicted keys might leave them.

use super::Place;

impl Place {
    /// Writes a QoS code no catalog writes (7) into `session`'s interest in
    /// `filter`.
    pub async fn corrupt_interest(&self, session: &str, filter: &str) {
        let sql = "UPDATE {ns}interest SET qos = 7 WHERE session = $1 AND filter = $2";
        if self.url.starts_with("redis") {
            let key = format!("{}:interest:{session}", self.options.namespace);
            self.redis_command(&["HSET", &key, filter, "7:1:a"]).await;
        } else {
            self.sql(sql, &[session, filter]).await;
        }
    }

    /// Stores `session`'s interest in `filter` with its session as a BLOB
    /// (SQLite only: its columns keep whatever type they are given).
    pub async fn blob_session(&self, session: &str, filter: &str) {
        assert!(self.sqlite_file().is_some(), "{}", self.url);
        let sql = "UPDATE interest SET session = CAST(session AS BLOB) WHERE session = $1 AND filter = $2";
        self.sql(sql, &[session, filter]).await;
    }

    /// Gives node `id` a negative incarnation.
    pub async fn corrupt_node(&self, id: &str) {
        if self.url.starts_with("redis") {
            let key = format!("{}:node:{id}", self.options.namespace);
            self.redis_command(&["HSET", &key, "incarnation", "-1"])
                .await;
        } else {
            self.sql("UPDATE {ns}nodes SET incarnation = -1 WHERE id = $1", &[id])
                .await;
        }
    }

    /// Gives node `id` an expiry that is text and an address that is a BLOB
    /// (SQLite only: its columns keep whatever type they are given, and
    /// text compares as later than any number, so the row is listed live).
    pub async fn garble_sqlite_node(&self, id: &str) {
        assert!(self.sqlite_file().is_some(), "{}", self.url);
        let sql = "UPDATE nodes SET expires_ms = 'soon', addr = CAST(addr AS BLOB) WHERE id = $1";
        self.sql(sql, &[id]).await;
    }

    /// Removes field `field` of Redis node `id`'s hash.
    pub async fn drop_redis_node_field(&self, id: &str, field: &str) {
        assert!(self.url.starts_with("redis"), "{}", self.url);
        let key = format!("{}:node:{id}", self.options.namespace);
        self.redis_command(&["HDEL", &key, field]).await;
    }

    /// Gives `recipient`'s message `id` a negative origin sequence.
    pub async fn corrupt_message(&self, recipient: &str, id: u64) {
        if self.url.starts_with("redis") {
            let key = format!("{}:m:{id}", self.options.namespace);
            self.redis_command(&["HSET", &key, "os", "-1"]).await;
        } else {
            let sql = "UPDATE {ns}offline SET origin_seq = -1 WHERE recipient = $1 AND id = $2";
            self.sql(sql, &[recipient, &id.to_string()]).await;
        }
    }

    /// Gives Redis message `id` an expiry that is not a number (the hash
    /// keeps it as a string; the SQL backends' columns hold only numbers).
    pub async fn corrupt_redis_expiry(&self, id: u64) {
        assert!(self.url.starts_with("redis"), "{}", self.url);
        let key = format!("{}:m:{id}", self.options.namespace);
        self.redis_command(&["HSET", &key, "exp", "soon"]).await;
    }

    /// Leaves `recipient`'s message `id` with no body to read: its payload
    /// TEXT in SQLite, its enqueue time before 1970 in PostgreSQL (whose
    /// `bytea` takes no TEXT), its hash gone in Redis (evicted).
    pub async fn garble_message(&self, recipient: &str, id: u64) {
        let id = id.to_string();
        if self.url.starts_with("redis") {
            let key = format!("{}:m:{id}", self.options.namespace);
            self.redis_command(&["DEL", &key]).await;
        } else if self.sqlite_file().is_some() {
            let sql = "UPDATE {ns}offline SET payload = 'text' WHERE recipient = $1 AND id = $2";
            self.sql(sql, &[recipient, &id]).await;
        } else {
            let sql = "UPDATE {ns}offline SET enqueued_ms = -5 WHERE recipient = $1 AND id = $2";
            self.sql(sql, &[recipient, &id]).await;
        }
    }

    /// Runs `sql` (`{ns}` for the schema's prefix, `$1`... for `args`, all
    /// text) on SQLite or PostgreSQL.
    async fn sql(&self, sql: &str, args: &[&str]) {
        if let Some(file) = self.sqlite_file() {
            let sql = sql.replace("{ns}", "").replace('$', "?");
            let conn = rusqlite::Connection::open(file).expect("the SQLite file");
            let changed = conn
                .execute(&sql, rusqlite::params_from_iter(args))
                .expect("corrupting SQLite");
            assert_eq!(changed, 1, "{sql} {args:?}");
        } else {
            let ns = format!("{}.", self.options.namespace);
            let sql = sql
                .replace("{ns}", &ns)
                .replace("id = $2", "id = $2::text::bigint");
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL");
            tokio::spawn(connection);
            let args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                args.iter().map(|a| a as _).collect();
            let changed = (client.execute(&sql, &args).await).expect("corrupting PostgreSQL");
            assert_eq!(changed, 1, "{sql} {args:?}");
        }
    }

    /// Runs one Redis command.
    async fn redis_command(&self, command: &[&str]) {
        super::redis_command(&self.url, command)
            .await
            .expect("corrupting Redis");
    }
}
