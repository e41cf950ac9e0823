--
-- security_roles: an attacker with each kind of login — an application role
-- (grant_app), a role with only USAGE on the schema, a role with nothing, a
-- map owner and a member of the map owner's role — against every function,
-- the trigger functions, and what the worker runs on their behalf. Each gets
-- only what API.md gives it. (The database owner's attack on the worker's
-- session is test/t/worker_session.pl; the define_map race is
-- test/isolation/specs/maps_define_owner_race.spec.)
--
SET TimeZone = 'UTC';
CREATE ROLE regress_app NOLOGIN;
CREATE ROLE regress_usage NOLOGIN;
CREATE ROLE regress_none NOLOGIN;
CREATE ROLE regress_owner NOLOGIN;
CREATE ROLE regress_member NOLOGIN IN ROLE regress_owner;
SELECT agentcache.grant_app('regress_app'), agentcache.grant_app('regress_owner');
GRANT USAGE ON SCHEMA agentcache TO regress_usage;
GRANT EXECUTE ON FUNCTION agentcache.define_map(text, text, interval), agentcache.drop_map(text) TO regress_owner;

-- 'ok' or the SQLSTATE a statement raises, run as `who`
CREATE FUNCTION regress_as(who text, sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE pg_catalog.format('SET LOCAL ROLE %I', who);
  BEGIN
    EXECUTE sql;
    RESET ROLE;
    RETURN 'ok';
  EXCEPTION WHEN OTHERS THEN
    RESET ROLE;
    RETURN SQLSTATE;
  END;
END
$$;

-- a map owned by a non-superuser, from a table in public
CREATE TABLE public.regress_src (k text PRIMARY KEY, v int);
INSERT INTO public.regress_src VALUES ('a', 1), ('b', 2);
GRANT SELECT ON public.regress_src TO regress_owner;
SET ROLE regress_owner;
SET search_path = public;
SELECT agentcache.define_map('regress_m',
  'SELECT k, pg_catalog.jsonb_build_object(''v'', v, ''who'', current_user) FROM regress_src');
RESET search_path;
RESET ROLE;
SELECT agentcache.lookup('regress_m', 'a') AS defined;

-- ---------------------------------------------------------------- every function, every role
CREATE TABLE regress_calls (n serial, call text);
INSERT INTO regress_calls (call) VALUES
  ($$SELECT agentcache.add_turn('regress-x:1', 'user', 'x')$$),
  ($$SELECT agentcache.get_context('regress-x:1')$$),
  ($$SELECT agentcache.get_turns('regress-x:1')$$),
  ($$SELECT agentcache.warm_session('regress-x:1')$$),
  ($$SELECT agentcache.end_session('regress-x:1')$$),
  ($$SELECT agentcache.forget_session('regress-x:none')$$),
  ($$SELECT agentcache.put('regress-ns', 'k', '1')$$),
  ($$SELECT agentcache.get('regress-ns', 'k')$$),
  ($$SELECT agentcache.get_stale('regress-ns', 'k', '1 hour')$$),
  ($$SELECT agentcache.fetch('regress-ns', 'k2', 'SELECT 1')$$),
  ($$SELECT agentcache.invalidate('regress-ns', 'k2')$$),
  ($$SELECT agentcache.invalidate_tag('regress-tag')$$),
  ($$SELECT agentcache.clear('regress-ns-none')$$),
  ($$SELECT agentcache.clear_all()$$),
  ($$SELECT agentcache.configure_namespace('regress-ns', '1 hour')$$),
  ($$SELECT agentcache.dedup_begin('regress-msg')$$),
  ($$SELECT agentcache.dedup_state('regress-msg')$$),
  ($$SELECT agentcache.dedup_complete('regress-msg-never-claimed')$$),
  ($$SELECT agentcache.dedup_fail('regress-msg-never-claimed')$$),
  ($$SELECT agentcache.dedup_release('regress-msg')$$),
  ($$SELECT agentcache.define_map('regress_m2', 'SELECT ''k''::text, ''1''::jsonb')$$),
  ($$SELECT agentcache.lookup('regress_m', 'a')$$),
  ($$SELECT agentcache.refresh_map('regress_m')$$),
  ($$SELECT agentcache.drop_map('regress_m_none')$$),
  ($$SELECT agentcache.inbound('none', 'regress-in', 'regress-x:2', 'hi')$$),
  ($$SELECT agentcache.outbound('regress-in-never-claimed', 'regress-x:2', 'r')$$),
  ($$SELECT * FROM agentcache.stats()$$),
  ($$SELECT * FROM agentcache.stats$$),
  ($$SELECT agentcache.health()$$),
  ($$SELECT agentcache.reset_stats()$$),
  ($$SELECT agentcache.grant_app('regress_none')$$),
  ($$SELECT agentcache._boundary_selftest('ok')$$),
  ($$SELECT agentcache._reset_memory()$$),
  ($$SELECT count(*) FROM agentcache.maps$$),
  ($$SELECT count(*) FROM agentcache.namespaces$$),
  ($$UPDATE agentcache.namespaces SET max_entries = 1$$),
  ($$UPDATE agentcache.dedup SET state = 'completed'$$),
  ($$TRUNCATE agentcache.turns$$);
SELECT c.call,
       regress_as('regress_app', c.call) AS app,
       regress_as('regress_usage', c.call) AS usage_only,
       regress_as('regress_none', c.call) AS nothing,
       regress_as('regress_owner', c.call) AS map_owner,
       regress_as('regress_member', c.call) AS owner_member
  FROM regress_calls c ORDER BY c.n;
-- the NULL required argument of grant_app
SELECT sqlstate_of($$SELECT agentcache.grant_app(NULL)$$) AS grant_app_null;
-- a regrole naming no role (found by the fuzzer: a syntax error of the GRANT)
SELECT sqlstate_of($$SELECT agentcache.grant_app(4294967295::oid::regrole)$$) AS grant_app_no_such_role,
       sqlstate_of($$SELECT agentcache.grant_app('-'::regrole)$$) AS grant_app_dash;
-- clean up what the calls left (claims of this backend included)
SELECT agentcache.dedup_release('regress-msg') IS NOT NULL, agentcache.dedup_release('regress-in') IS NOT NULL;
SELECT agentcache.forget_session('regress-x:1') + agentcache.forget_session('regress-x:2') >= 0 AS forgotten;
SELECT agentcache.clear('regress-ns') >= 0 AS cleared;
DELETE FROM agentcache.namespaces WHERE namespace OPERATOR(pg_catalog.=) 'regress-ns';

-- ---------------------------------------------------------------- the internal trigger functions
CREATE SCHEMA regress_app_s AUTHORIZATION regress_app;
CREATE TABLE regress_app_s.t (session_id text, x int);
ALTER TABLE regress_app_s.t OWNER TO regress_app;
-- an application role cannot attach them at all
SELECT regress_as('regress_app', $$CREATE TRIGGER t1 AFTER TRUNCATE ON regress_app_s.t
  FOR EACH STATEMENT EXECUTE FUNCTION agentcache._turns_changed()$$) AS attach_turns_changed,
       regress_as('regress_app', $$CREATE TRIGGER t2 AFTER INSERT ON regress_app_s.t
  FOR EACH STATEMENT EXECUTE FUNCTION agentcache._namespaces_changed()$$) AS attach_namespaces_changed;
-- attached to another table (by a superuser), they refuse to fire: 39P01,
-- and the session cache of the database is untouched
CREATE TRIGGER s1 AFTER TRUNCATE ON regress_app_s.t FOR EACH STATEMENT EXECUTE FUNCTION agentcache._turns_changed();
CREATE TRIGGER s2 AFTER INSERT ON regress_app_s.t FOR EACH ROW EXECUTE FUNCTION agentcache._turns_changed();
CREATE TRIGGER s3 AFTER UPDATE ON regress_app_s.t FOR EACH STATEMENT EXECUTE FUNCTION agentcache._namespaces_changed();
SELECT agentcache.add_turn('regress-y:1', 'user', 'cached');
SELECT agentcache.warm_session('regress-y:1') AS cached;
SELECT regress_as('regress_app', $$TRUNCATE regress_app_s.t$$) AS truncate_own_table,
       regress_as('regress_app', $$INSERT INTO regress_app_s.t VALUES ('regress-y:1', 1)$$) AS insert_own_table,
       regress_as('regress_app', $$UPDATE regress_app_s.t SET x = 2$$) AS update_own_table;
SELECT agentcache.end_session('regress-y:1') AS still_cached;
DROP TRIGGER s1 ON regress_app_s.t;
DROP TRIGGER s2 ON regress_app_s.t;
DROP TRIGGER s3 ON regress_app_s.t;
SELECT agentcache.forget_session('regress-y:1') AS forgotten;
-- their own triggers still work for every role with DML on the table
SELECT agentcache.add_turn('regress-y:2', 'user', 'one');
SELECT agentcache.warm_session('regress-y:2') AS cached;
SELECT regress_as('regress_app', $$DELETE FROM agentcache.turns WHERE session_id OPERATOR(pg_catalog.=) 'regress-y:2'$$)
         AS app_delete;
SELECT agentcache.get_context('regress-y:2') AS after_app_delete;

-- ---------------------------------------------------------------- refresh_trigger on an application's table
-- allowed: the worker reloads that map, as the map's owner, and nothing else
SET ROLE regress_app;
CREATE TRIGGER t4 AFTER INSERT ON regress_app_s.t FOR EACH STATEMENT EXECUTE FUNCTION agentcache.refresh_trigger('regress_m');
RESET ROLE;
SELECT (agentcache.health()->'maps'->'regress_m'->>'last_refresh')::timestamptz AS before_refresh \gset
SELECT regress_as('regress_app', $$INSERT INTO regress_app_s.t VALUES ('x', 3)$$) AS app_insert;
SELECT wait_until('(agentcache.health()->''maps''->''regress_m''->>''last_refresh'')::timestamptz > '''
                  || :'before_refresh' || '''::timestamptz') AS worker_reloaded;
SELECT agentcache.lookup('regress_m', 'a')->>'who' AS ran_as;

-- ---------------------------------------------------------------- health(): last_error for owners only
REVOKE SELECT ON public.regress_src FROM regress_owner;
SELECT regress_as('regress_app', $$INSERT INTO regress_app_s.t VALUES ('x', 4)$$) AS app_insert;
SELECT wait_until($$agentcache.health()->'maps'->'regress_m'->>'last_error' IS NOT NULL$$) AS refresh_failed;
SELECT agentcache.health()->'maps'->'regress_m'->>'last_error' AS superuser_sees;
SET ROLE regress_owner;
SELECT agentcache.health()->'maps'->'regress_m'->>'last_error' AS owner_sees;
RESET ROLE;
SET ROLE regress_member;
SELECT agentcache.health()->'maps'->'regress_m'->>'last_error' AS member_sees;
RESET ROLE;
SET ROLE regress_app;
SELECT agentcache.health()->'maps'->'regress_m' ? 'last_error' AS app_has_key,
       agentcache.health()->'maps'->'regress_m'->'last_error' AS app_sees;
RESET ROLE;
-- the old version kept serving
SELECT agentcache.lookup('regress_m', 'b')->>'v' AS still_served;
GRANT SELECT ON public.regress_src TO regress_owner;

-- ---------------------------------------------------------------- a temp table named like the source
-- a member of the owner's role shadows the map's source in its own session:
-- the map's query searches pg_temp last, so the real table is read
SET ROLE regress_member;
CREATE TEMP TABLE regress_src (k text, v int);
INSERT INTO regress_src VALUES ('a', 999), ('evil', 666);
GRANT SELECT ON pg_temp.regress_src TO regress_owner;
SELECT agentcache.refresh_map('regress_m') AS reloaded;
RESET ROLE;
SELECT agentcache.lookup('regress_m', 'a')->>'v' AS a, agentcache.lookup('regress_m', 'evil') IS NULL AS no_evil;
DROP TABLE pg_temp.regress_src;
-- an explicit pg_temp in the stored search_path goes last too
SET ROLE regress_owner;
SET search_path = pg_temp, public;
SELECT agentcache.define_map('regress_m',
  'SELECT k, pg_catalog.jsonb_build_object(''v'', v, ''who'', current_user) FROM regress_src');
RESET search_path;
RESET ROLE;
SET ROLE regress_member;
CREATE TEMP TABLE regress_src (k text, v int);
INSERT INTO regress_src VALUES ('a', 999);
GRANT SELECT ON pg_temp.regress_src TO regress_owner;
SELECT agentcache.refresh_map('regress_m') AS reloaded;
RESET ROLE;
SELECT agentcache.lookup('regress_m', 'a')->>'v' AS a_again;
DROP TABLE pg_temp.regress_src;

-- ---------------------------------------------------------------- clean up
SELECT agentcache.drop_map('regress_m'), agentcache.drop_map('regress_m2');
DROP SCHEMA regress_app_s CASCADE;
DROP TABLE public.regress_src, regress_calls;
DROP FUNCTION regress_as(text, text);
DROP OWNED BY regress_app, regress_usage, regress_none, regress_owner, regress_member;
DROP ROLE regress_member, regress_owner, regress_app, regress_usage, regress_none;
