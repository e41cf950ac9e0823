-- agentcache 0.1.0: conversation memory tier, observability, security.
\echo Use "CREATE EXTENSION agentcache" to load this file. \quit

-- Every function below is written in C and schema-qualifies every object it
-- uses (tables, functions, operators), so nothing resolves through the
-- caller's search_path; SQL-language helpers pin search_path.

-- ---------------------------------------------------------------- storage

CREATE TABLE agentcache.turns (
    session_id  text        NOT NULL,
    seq         bigint      NOT NULL,
    role        text        NOT NULL
        CONSTRAINT turns_role_check CHECK (role OPERATOR(pg_catalog.=) ANY (ARRAY['user', 'assistant', 'system', 'tool']::pg_catalog.text[])),
    content     text        NOT NULL,
    meta        jsonb,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (session_id, seq)
);
COMMENT ON TABLE agentcache.turns IS 'durable conversation history; the shared-memory cache holds each session''s newest turns';
-- durable history belongs in dumps
SELECT pg_catalog.pg_extension_config_dump('agentcache.turns', '');

-- ---------------------------------------------------------------- conversation memory

CREATE FUNCTION agentcache.add_turn(session_id text, role text, content text, meta jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'agentcache_add_turn'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.get_context(session_id text, max_turns integer DEFAULT NULL, max_chars integer DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'agentcache_get_context'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.get_turns(session_id text, max_turns integer DEFAULT NULL)
RETURNS TABLE(seq bigint, role text, content text, meta jsonb, created_at timestamptz)
AS 'MODULE_PATHNAME', 'agentcache_get_turns'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE ROWS 30;

CREATE FUNCTION agentcache.warm_session(session_id text)
RETURNS integer
AS 'MODULE_PATHNAME', 'agentcache_warm_session'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.end_session(session_id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'agentcache_end_session'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.forget_session(session_id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'agentcache_forget_session'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

-- Direct DML on agentcache.turns invalidates the cached copies at commit.
CREATE FUNCTION agentcache._turns_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'agentcache_turns_changed'
LANGUAGE C;

CREATE TRIGGER turns_changed AFTER INSERT OR UPDATE OR DELETE ON agentcache.turns
    FOR EACH ROW EXECUTE FUNCTION agentcache._turns_changed();
CREATE TRIGGER turns_truncated AFTER TRUNCATE ON agentcache.turns
    FOR EACH STATEMENT EXECUTE FUNCTION agentcache._turns_changed();

-- ---------------------------------------------------------------- prewarmed lookup maps

CREATE TABLE agentcache.maps (
    name         text        PRIMARY KEY,
    query        text        NOT NULL,
    refresh      interval    NOT NULL DEFAULT '1 hour',
    owner        regrole     NOT NULL,
    search_path  text        NOT NULL,
    last_refresh timestamptz,
    last_error   text,
    entries      bigint
);
COMMENT ON TABLE agentcache.maps IS 'lookup maps loaded into shared memory by the agentcache worker; change them only through define_map/drop_map';
SELECT pg_catalog.pg_extension_config_dump('agentcache.maps', '');

CREATE FUNCTION agentcache.define_map(name text, query text, refresh interval DEFAULT '1 hour')
RETURNS void
AS 'MODULE_PATHNAME', 'agentcache_define_map'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.lookup(name text, key text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'agentcache_lookup'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.resolve_instance(instance text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'agentcache_resolve_instance'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.refresh_map(name text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'agentcache_refresh_map'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.drop_map(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'agentcache_drop_map'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.refresh_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'agentcache_refresh_trigger'
LANGUAGE C;

-- turn retention (agentcache.turn_retention) scans by age
CREATE INDEX turns_created_at_brin ON agentcache.turns USING brin (created_at);

-- ---------------------------------------------------------------- TTL cache

-- The cache itself: UNLOGGED (no WAL; emptied by PostgreSQL after a crash).
-- Keys compare bytewise (COLLATE "C"): they are identifiers, not prose.
CREATE UNLOGGED TABLE agentcache.entries (
    namespace   text COLLATE "C" NOT NULL,
    key         text COLLATE "C" NOT NULL,
    value       jsonb       NOT NULL,
    tags        text[]      NOT NULL DEFAULT '{}',
    expires_at  timestamptz,
    stored_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (namespace, key)
) WITH (fillfactor = 80);
-- No index on expires_at, on purpose: every re-put moves expires_at, and an index
-- on it would make each one a non-HOT update writing into every index. Without it
-- a re-put with unchanged tags is a HOT update (fillfactor leaves the page room
-- for the new version); the worker finds expired rows by walking the table in
-- block ranges (Tid Range Scan), a bounded number of pages per sweep.
CREATE INDEX entries_tags ON agentcache.entries USING gin (tags);

CREATE TABLE agentcache.namespaces (
    namespace   text COLLATE "C" PRIMARY KEY,
    default_ttl interval,
    max_entries bigint
);
COMMENT ON TABLE agentcache.namespaces IS 'TTL cache namespaces; change them only through configure_namespace (put creates one with defaults)';
SELECT pg_catalog.pg_extension_config_dump('agentcache.namespaces', '');
-- Backends cache namespace settings; a committed change (through
-- configure_namespace or any DML, also in replica mode) makes them re-read.
CREATE FUNCTION agentcache._namespaces_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'agentcache_namespaces_changed'
LANGUAGE C;
CREATE TRIGGER namespaces_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agentcache.namespaces
    FOR EACH STATEMENT EXECUTE FUNCTION agentcache._namespaces_changed();
ALTER TABLE agentcache.namespaces ENABLE ALWAYS TRIGGER namespaces_changed;

CREATE FUNCTION agentcache.put(namespace text, key text, value jsonb, ttl interval DEFAULT NULL, tags text[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'agentcache_put'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.get(namespace text, key text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'agentcache_get'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.get_stale(namespace text, key text, max_stale interval)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'agentcache_get_stale'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.fetch(namespace text, key text, query text, ttl interval DEFAULT NULL, stale_if_error interval DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'agentcache_fetch'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.invalidate(namespace text, key text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'agentcache_invalidate'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.invalidate_tag(tag text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'agentcache_invalidate_tag'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.clear(namespace text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'agentcache_clear'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.clear_all()
RETURNS bigint
AS 'MODULE_PATHNAME', 'agentcache_clear_all'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION agentcache.configure_namespace(namespace text, default_ttl interval, max_entries bigint DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'agentcache_configure_namespace'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.invalidate_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'agentcache_invalidate_trigger'
LANGUAGE C;

-- ---------------------------------------------------------------- message deduplication

-- Logged: a crash never lets a completed message be processed again.
CREATE TABLE agentcache.dedup (
    message_id   text        PRIMARY KEY,
    fingerprint  text,
    state        text        NOT NULL CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['processing', 'completed', 'failed']::pg_catalog.text[])),
    holder_pid   integer,
    attempts     integer     NOT NULL DEFAULT 1,
    error        text,
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at   timestamptz,
    claim_window interval
) WITH (fillfactor = 80);
CREATE INDEX dedup_fingerprint ON agentcache.dedup (fingerprint) WHERE fingerprint IS NOT NULL;
-- No index on expires_at (as for agentcache.entries): completing a claim sets it,
-- and the index would make that a non-HOT update; the worker's sweep walks the
-- table in block ranges instead.

CREATE FUNCTION agentcache.dedup_begin(message_id text, conversation_id text DEFAULT NULL, body text DEFAULT NULL, within interval DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'agentcache_dedup_begin'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.dedup_complete(message_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'agentcache_dedup_complete'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.dedup_fail(message_id text, error text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'agentcache_dedup_fail'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.dedup_state(message_id text)
RETURNS TABLE(state text, holder_pid integer, attempts integer, fingerprint text, error text, updated_at timestamptz)
AS 'MODULE_PATHNAME', 'agentcache_dedup_state'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE ROWS 1;

CREATE FUNCTION agentcache.dedup_release(message_id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'agentcache_dedup_release'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

-- ---------------------------------------------------------------- one round trip

CREATE FUNCTION agentcache.inbound(instance text, message_id text, session_id text, body text, max_turns integer DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'agentcache_inbound'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.outbound(message_id text, session_id text, reply text, meta jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'agentcache_outbound'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

-- ---------------------------------------------------------------- observability

CREATE FUNCTION agentcache.stats()
RETURNS TABLE(tier text, name text, entries bigint, bytes bigint, hits bigint, misses bigint,
              stale_hits bigint, evictions bigint, expirations bigint, invalidations bigint)
AS 'MODULE_PATHNAME', 'agentcache_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW agentcache.stats AS SELECT * FROM agentcache.stats();

CREATE FUNCTION agentcache.health()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'agentcache_health'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE FUNCTION agentcache.reset_stats()
RETURNS void
AS 'MODULE_PATHNAME', 'agentcache_reset_stats'
LANGUAGE C VOLATILE;

-- ---------------------------------------------------------------- internals

-- Proves the C++/PostgreSQL error boundary in both directions (regression tests).
CREATE FUNCTION agentcache._boundary_selftest(kind text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'agentcache_boundary_selftest'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;

CREATE FUNCTION agentcache._reset_memory()
RETURNS void
AS 'MODULE_PATHNAME', 'agentcache_reset_memory'
LANGUAGE C VOLATILE;

-- A re-created extension starts from empty shared memory (sessions and maps).
SELECT agentcache._reset_memory();

-- ---------------------------------------------------------------- privileges

CREATE FUNCTION agentcache.grant_app(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA agentcache TO %s', role);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON agentcache.turns TO %s', role);
    EXECUTE format('GRANT SELECT ON agentcache.stats TO %s', role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON agentcache.entries TO %s', role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON agentcache.dedup TO %s', role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION agentcache.add_turn(text, text, text, jsonb),'
                   ' agentcache.get_context(text, integer, integer),'
                   ' agentcache.get_turns(text, integer),'
                   ' agentcache.warm_session(text),'
                   ' agentcache.end_session(text),'
                   ' agentcache.forget_session(text),'
                   ' agentcache.lookup(text, text), agentcache.resolve_instance(text),'
                   ' agentcache.refresh_map(text),'
                   ' agentcache.put(text, text, jsonb, interval, text[]), agentcache.get(text, text),'
                   ' agentcache.get_stale(text, text, interval),'
                   ' agentcache.fetch(text, text, text, interval, interval),'
                   ' agentcache.invalidate(text, text), agentcache.invalidate_tag(text),'
                   ' agentcache.clear(text),'
                   ' agentcache.dedup_begin(text, text, text, interval), agentcache.dedup_complete(text),'
                   ' agentcache.dedup_fail(text, text), agentcache.dedup_state(text),'
                   ' agentcache.inbound(text, text, text, text, integer),'
                   ' agentcache.outbound(text, text, text, jsonb),'
                   ' agentcache.stats(), agentcache.health() TO %s', role);
END
$$;

REVOKE ALL ON agentcache.maps FROM PUBLIC;
REVOKE ALL ON agentcache.namespaces FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache.clear_all() FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache.dedup_release(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache.configure_namespace(text, interval, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache.define_map(text, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache.drop_map(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache.reset_stats() FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache.grant_app(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache._boundary_selftest(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache._reset_memory() FROM PUBLIC;
