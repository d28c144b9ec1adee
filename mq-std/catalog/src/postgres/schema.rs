//! The PostgreSQL catalog's tables and functions, created on first use in
//! the namespace's schema (`{schema}`, `{name}` replaced at open).

/// Run once per open under a lock, so that nodes opening at once do not
/// race to create the same tables. `{schema}` is the checked namespace,
/// quoted (a namespace may be a keyword: `select`, `user`), `{name}` the
/// namespace as it is.
pub(super) const SCHEMA: &str = "
SELECT pg_advisory_xact_lock(hashtextextended('mq-catalog schema {name}', 0));
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE OR REPLACE FUNCTION {schema}.now_ms() RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT (extract(epoch FROM now()) * 1000)::bigint';
CREATE TABLE IF NOT EXISTS {schema}.counters (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.nodes (
    id text PRIMARY KEY,
    incarnation bigint NOT NULL,
    addr text NOT NULL,
    expires_ms bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.interest (
    session text NOT NULL,
    filter text NOT NULL,
    node text NOT NULL,
    grp text,
    qos smallint NOT NULL,
    PRIMARY KEY (session, filter)
);
CREATE TABLE IF NOT EXISTS {schema}.offline (
    id bigserial PRIMARY KEY,
    recipient text NOT NULL,
    topic text NOT NULL,
    payload bytea NOT NULL,
    meta bytea NOT NULL,
    origin_node text NOT NULL,
    origin_incarnation bigint NOT NULL,
    origin_seq bigint NOT NULL,
    enqueued_ms bigint NOT NULL,
    expires_ms bigint,
    UNIQUE (recipient, origin_node, origin_incarnation, origin_seq)
);
CREATE INDEX IF NOT EXISTS offline_by_recipient ON {schema}.offline (recipient, id);
CREATE INDEX IF NOT EXISTS offline_by_expiry ON {schema}.offline (recipient, expires_ms)
    WHERE expires_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS {schema}.queues (
    recipient text PRIMARY KEY,
    len bigint NOT NULL
);
CREATE OR REPLACE FUNCTION {schema}.enqueue(
    r text, queue_limit bigint, o_node text, o_incarnation bigint, o_seq bigint,
    t text, p bytea, m bytea, ttl bigint
) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    found bigint;
    queued bigint;
    expired bigint;
BEGIN
    INSERT INTO {schema}.queues (recipient, len) VALUES (r, 0)
        ON CONFLICT (recipient) DO NOTHING;
    SELECT len INTO queued FROM {schema}.queues WHERE recipient = r FOR UPDATE;
    DELETE FROM {schema}.offline WHERE recipient = r AND expires_ms <= {schema}.now_ms();
    GET DIAGNOSTICS expired = ROW_COUNT;
    queued := queued - expired;
    SELECT id INTO found FROM {schema}.offline WHERE recipient = r AND origin_node = o_node
        AND origin_incarnation = o_incarnation AND origin_seq = o_seq;
    IF found IS NOT NULL OR queued >= queue_limit THEN
        UPDATE {schema}.queues SET len = queued WHERE recipient = r;
        IF found IS NOT NULL THEN
            RETURN ARRAY[2, found];
        END IF;
        RETURN ARRAY[3];
    END IF;
    INSERT INTO {schema}.offline (recipient, topic, payload, meta, origin_node,
            origin_incarnation, origin_seq, enqueued_ms, expires_ms)
        VALUES (r, t, p, m, o_node, o_incarnation, o_seq, {schema}.now_ms(),
            {schema}.now_ms() + ttl)
        RETURNING id INTO found;
    UPDATE {schema}.queues SET len = queued + 1 WHERE recipient = r;
    RETURN ARRAY[1, found];
END
$$;
CREATE OR REPLACE FUNCTION {schema}.ack(r text, ids bigint[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    gone bigint;
BEGIN
    -- The queue's row first, as enqueue takes it: no deadlock between them.
    PERFORM 1 FROM {schema}.queues WHERE recipient = r FOR UPDATE;
    DELETE FROM {schema}.offline WHERE recipient = r AND id = ANY(ids);
    GET DIAGNOSTICS gone = ROW_COUNT;
    UPDATE {schema}.queues SET len = len - gone WHERE recipient = r;
    RETURN gone;
END
$$;
";
