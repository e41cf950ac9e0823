-- agentcache 0.1.0 -> 0.2.0. A fresh CREATE EXTENSION agentcache runs
-- agentcache--0.1.0.sql (frozen as released) and then this script, so a new
-- install and an upgraded one have the same schema (test/regress/sql/
-- upgrade.sql compares them). Every change of an SQL object from 0.1.0 on
-- goes here, never into the released script.
\echo Use "ALTER EXTENSION agentcache UPDATE TO '0.2.0'" to load this file. \quit


-- ---------------------------------------------------------------- security corrections
-- The extension's triggers on its own tables fire in replica mode too
-- (session_replication_role = replica, as in logical-replication apply): a
-- direct change of agentcache.turns always invalidates the cached copy.
ALTER TABLE agentcache.turns ENABLE ALWAYS TRIGGER turns_changed;
ALTER TABLE agentcache.turns ENABLE ALWAYS TRIGGER turns_truncated;

-- The internal trigger functions serve only the extension's own tables:
-- nobody else may attach them (they also refuse to fire elsewhere: 39P01).
REVOKE ALL ON FUNCTION agentcache._turns_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION agentcache._namespaces_changed() FROM PUBLIC;

-- grant_app(NULL) raises 22004 like every NULL required argument; every name
-- qualified, search_path pinned.
CREATE OR REPLACE FUNCTION agentcache.grant_app(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- a regrole of an OID that names no role (e.g. 0 from '-') prints as a
    -- number: 42704, not a syntax error of the GRANT below
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) role::pg_catalog.oid) THEN
        RAISE EXCEPTION 'role with OID % does not exist', role::pg_catalog.oid USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA agentcache TO %s', role);
    EXECUTE pg_catalog.format('GRANT SELECT, INSERT, DELETE ON agentcache.turns TO %s', role);
    EXECUTE pg_catalog.format('GRANT SELECT ON agentcache.stats TO %s', role);
    EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE ON agentcache.entries TO %s', role);
    EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE ON agentcache.dedup TO %s', role);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION agentcache.add_turn(text, text, text, jsonb),'
                   ' agentcache.get_context(text, integer, integer, integer, boolean, boolean),'
                   ' agentcache.get_turns(text, integer, integer, boolean, boolean),'
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
                   ' agentcache.dedup_begin(text, text, text, interval, interval), agentcache.dedup_complete(text),'
                   ' agentcache.dedup_fail(text, text), agentcache.dedup_state(text),'
                   ' agentcache.reply_sent(text), agentcache.pending_replies(interval, integer),'
                   ' agentcache.inbound(text, text, text, text, integer, integer, boolean, boolean),'
                   ' agentcache.outbound(text, text, text, jsonb),'
                   ' agentcache.stats(), agentcache.health() TO %s', role);
END
$$;

-- ---------------------------------------------------------------- claim leases and the reply outbox
-- A claim has a lease (agentcache.claim_lease, or dedup_begin's lease): past
-- it, another session takes the message over and the old holder is fenced.
-- outbound() keeps the reply turn's seq with the completed message until
-- reply_sent() marks it sent (API.md 0.2.0, "Claim leases with fencing",
-- "Replies delivered once").
ALTER TABLE agentcache.dedup
    ADD COLUMN lease_expires_at timestamptz,
    -- whether the holder holds the claim's lock (false: it took the message
    -- over, or it was released); a free lock then means such a holder is gone
    ADD COLUMN holder_locked    boolean NOT NULL DEFAULT true,
    ADD COLUMN session_id       text,
    ADD COLUMN reply_seq        bigint,
    ADD COLUMN reply_sent       boolean;
-- The replies not yet marked sent, oldest completion first (in exactly the
-- order pending_replies returns them): the resender's
-- pending_replies() reads this small index, never the whole table.
CREATE INDEX dedup_pending_replies ON agentcache.dedup (updated_at, message_id) WHERE reply_sent OPERATOR(pg_catalog.=) false;

CREATE FUNCTION agentcache.reply_sent(message_id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'agentcache_reply_sent'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

CREATE FUNCTION agentcache.pending_replies(older_than interval DEFAULT '1 minute', max_rows integer DEFAULT 100)
RETURNS TABLE(message_id text, session_id text, seq bigint, content text, meta jsonb, completed_at timestamptz)
AS 'MODULE_PATHNAME', 'agentcache_pending_replies'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

-- ---------------------------------------------------------------- token budgets
-- Exact token counts as tiktoken's encode_ordinary counts them (API.md 0.2.0,
-- "Token budgets"); the rank files are installed next to this script.
CREATE FUNCTION agentcache.token_count(content text, encoding text DEFAULT 'o200k_base')
RETURNS integer
AS 'MODULE_PATHNAME', 'agentcache_token_count'
LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;

-- Functions whose signature or result changes are dropped and created again,
-- each with the EXECUTE grants the old one had (an administrator may have
-- revoked them from PUBLIC and granted roles): dedup_begin gains `lease`,
-- dedup_state three columns (claim leases, the reply outbox); get_context,
-- get_turns and inbound gain max_tokens, keep_system and start_on_user,
-- get_turns a tokens column (token budgets). 0.1.0 calls still work (the new
-- arguments have defaults).
DO $upgrade$
DECLARE
    begin_acl aclitem[];
    state_acl aclitem[];
    ctx_acl aclitem[];
    turns_acl aclitem[];
    inbound_acl aclitem[];
    f record;
    a record;
BEGIN
    SELECT p.proacl INTO begin_acl FROM pg_catalog.pg_proc p
     WHERE p.oid OPERATOR(pg_catalog.=) 'agentcache.dedup_begin(text, text, text, interval)'::pg_catalog.regprocedure;
    SELECT p.proacl INTO state_acl FROM pg_catalog.pg_proc p
     WHERE p.oid OPERATOR(pg_catalog.=) 'agentcache.dedup_state(text)'::pg_catalog.regprocedure;
    SELECT p.proacl INTO ctx_acl FROM pg_catalog.pg_proc p
     WHERE p.oid OPERATOR(pg_catalog.=) 'agentcache.get_context(text, integer, integer)'::pg_catalog.regprocedure;
    SELECT p.proacl INTO turns_acl FROM pg_catalog.pg_proc p
     WHERE p.oid OPERATOR(pg_catalog.=) 'agentcache.get_turns(text, integer)'::pg_catalog.regprocedure;
    SELECT p.proacl INTO inbound_acl FROM pg_catalog.pg_proc p
     WHERE p.oid OPERATOR(pg_catalog.=) 'agentcache.inbound(text, text, text, text, integer)'::pg_catalog.regprocedure;
    DROP FUNCTION agentcache.dedup_begin(text, text, text, interval);
    DROP FUNCTION agentcache.dedup_state(text);
    DROP FUNCTION agentcache.get_context(text, integer, integer);
    DROP FUNCTION agentcache.get_turns(text, integer);
    DROP FUNCTION agentcache.inbound(text, text, text, text, integer);
    CREATE FUNCTION agentcache.dedup_begin(message_id text, conversation_id text DEFAULT NULL, body text DEFAULT NULL,
                                           within interval DEFAULT NULL, lease interval DEFAULT NULL)
    RETURNS text
    AS 'MODULE_PATHNAME', 'agentcache_dedup_begin'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
    CREATE FUNCTION agentcache.dedup_state(message_id text)
    RETURNS TABLE(state text, holder_pid integer, attempts integer, fingerprint text, error text, updated_at timestamptz,
                  lease_expires_at timestamptz, reply_seq bigint, reply_sent boolean)
    AS 'MODULE_PATHNAME', 'agentcache_dedup_state'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE ROWS 1;
    CREATE FUNCTION agentcache.get_context(session_id text, max_turns integer DEFAULT NULL,
                                           max_chars integer DEFAULT NULL, max_tokens integer DEFAULT NULL,
                                           keep_system boolean DEFAULT false, start_on_user boolean DEFAULT false)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'agentcache_get_context'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
    CREATE FUNCTION agentcache.get_turns(session_id text, max_turns integer DEFAULT NULL,
                                         max_tokens integer DEFAULT NULL, keep_system boolean DEFAULT false,
                                         start_on_user boolean DEFAULT false)
    RETURNS TABLE(seq bigint, role text, content text, meta jsonb, created_at timestamptz, tokens integer)
    AS 'MODULE_PATHNAME', 'agentcache_get_turns'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE ROWS 30;
    CREATE FUNCTION agentcache.inbound(instance text, message_id text, session_id text, body text,
                                       max_turns integer DEFAULT NULL, max_tokens integer DEFAULT NULL,
                                       keep_system boolean DEFAULT false, start_on_user boolean DEFAULT false)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'agentcache_inbound'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
    FOR f IN SELECT * FROM (VALUES
               ('agentcache.dedup_begin(text, text, text, interval, interval)', begin_acl),
               ('agentcache.dedup_state(text)', state_acl),
               ('agentcache.get_context(text, integer, integer, integer, boolean, boolean)', ctx_acl),
               ('agentcache.get_turns(text, integer, integer, boolean, boolean)', turns_acl),
               ('agentcache.inbound(text, text, text, text, integer, integer, boolean, boolean)', inbound_acl)) v(fn, acl)
             WHERE v.acl IS NOT NULL LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.fn);
        FOR a IN SELECT e.grantee FROM pg_catalog.aclexplode(f.acl) e
                  WHERE e.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE' LOOP
            IF a.grantee OPERATOR(pg_catalog.=) 0 THEN
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f.fn);
            ELSE
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', f.fn, a.grantee::pg_catalog.regrole);
            END IF;
        END LOOP;
    END LOOP;
END
$upgrade$;
