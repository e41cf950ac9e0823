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
