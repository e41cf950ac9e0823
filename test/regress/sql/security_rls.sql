--
-- security_rls: row-level security and constraints on the extension's own
-- tables are honoured exactly as the equivalent SQL would honour them, and
-- what one role reads never changes what another role is served (API.md
-- "Version 0.2.0 — Security corrections"). The extension's triggers on
-- agentcache.turns fire in replica mode too.
--
SET TimeZone = 'UTC';
CREATE ROLE regress_bob NOLOGIN;
CREATE ROLE regress_carol NOLOGIN;
SELECT agentcache.grant_app('regress_bob'), agentcache.grant_app('regress_carol');

-- ---------------------------------------------------------------- TTL entries under a policy
-- each role sees only the namespace named after it
ALTER TABLE agentcache.entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY entries_by_role ON agentcache.entries
  USING (namespace OPERATOR(pg_catalog.=) current_user::text)
  WITH CHECK (namespace OPERATOR(pg_catalog.=) current_user::text);
SET ROLE regress_bob;
SELECT agentcache.put('regress_bob', 'k', '"bob secret"');
SELECT agentcache.get('regress_bob', 'k') AS bob_reads_his;
RESET ROLE;
SET ROLE regress_carol;
-- carol: a plain SELECT returns nothing, and so do get, get_stale and a fetch hit
SELECT count(*) AS plain_select FROM agentcache.entries WHERE key OPERATOR(pg_catalog.=) 'k';
SELECT agentcache.get('regress_bob', 'k') IS NULL AS get_hidden,
       agentcache.get_stale('regress_bob', 'k', '1 hour') IS NULL AS get_stale_hidden;
-- her fetch misses and runs its query; storing over bob's row is refused as
-- INSERT ... ON CONFLICT DO UPDATE would refuse it
SELECT sqlstate_of($$SELECT agentcache.fetch('regress_bob', 'k', 'SELECT ''carol''')$$) AS fetch_over_bob;
SELECT sqlstate_of($$SELECT agentcache.put('regress_bob', 'k', '"carol"')$$) AS put_over_bob;
-- her own namespace works
SELECT agentcache.fetch('regress_carol', 'k', 'SELECT ''carol value''') AS carol_fetch,
       agentcache.get('regress_carol', 'k') AS carol_get;
RESET ROLE;
-- bob still reads his own value: nothing of carol's leaked or overwrote it
SET ROLE regress_bob;
SELECT agentcache.get('regress_bob', 'k') AS bob_after, agentcache.get('regress_carol', 'k') IS NULL AS bob_no_carol;
RESET ROLE;
SELECT namespace, key, value FROM agentcache.entries WHERE namespace LIKE 'regress_%' ORDER BY 1, 2;
DROP POLICY entries_by_role ON agentcache.entries;
ALTER TABLE agentcache.entries DISABLE ROW LEVEL SECURITY;
SELECT agentcache.clear('regress_bob') + agentcache.clear('regress_carol') AS cleared;

-- ---------------------------------------------------------------- turns under a policy
-- a session belongs to the role named before its colon
SELECT agentcache.add_turn('regress_bob:1', 'user', 'bob asks'),
       agentcache.add_turn('regress_bob:1', 'assistant', 'bob is answered');
ALTER TABLE agentcache.turns ENABLE ROW LEVEL SECURITY;
CREATE POLICY turns_by_role ON agentcache.turns
  USING (pg_catalog.split_part(session_id, ':', 1) OPERATOR(pg_catalog.=) current_user::text)
  WITH CHECK (pg_catalog.split_part(session_id, ':', 1) OPERATOR(pg_catalog.=) current_user::text);
-- a. carol reads bob's session first (cold cache): [] for her, and nothing cached
SELECT agentcache.end_session('regress_bob:1') IS NOT NULL AS cold;
SET ROLE regress_carol;
SELECT agentcache.get_context('regress_bob:1') AS carol_context,
       (SELECT count(*) FROM agentcache.get_turns('regress_bob:1')) AS carol_turns;
SELECT agentcache.warm_session('regress_bob:1') AS carol_warm;
RESET ROLE;
SET ROLE regress_bob;
SELECT jsonb_array_length(agentcache.get_context('regress_bob:1')) AS bob_sees;
RESET ROLE;
-- b. the table owner reads it first (its read is complete: cached) — carol still gets nothing
SELECT jsonb_array_length(agentcache.get_context('regress_bob:1')) AS owner_sees,
       agentcache.warm_session('regress_bob:1') AS cached;
SET ROLE regress_carol;
SELECT agentcache.get_context('regress_bob:1') AS carol_context_warm,
       (SELECT count(*) FROM agentcache.get_turns('regress_bob:1')) AS carol_turns_warm,
       agentcache.get_context('regress_bob:1', 50) AS carol_context_from_table;
-- her inbound cannot add to bob's session: WITH CHECK refuses it (42501), and
-- the claim it took goes with the failed statement
SELECT sqlstate_of($$SELECT agentcache.inbound('none', 'regress-rls-m2', 'regress_bob:1', 'carol writes')$$)
         AS carol_inbound_into_bob;
SELECT sqlstate_of($$SELECT agentcache.add_turn('regress_bob:1', 'user', 'carol writes')$$) AS carol_add_turn;
SELECT agentcache.add_turn('regress_carol:1', 'user', 'carol own') AS carol_own_seq;
RESET ROLE;
-- c. bob reads his own, under the policy, after all that
SET ROLE regress_bob;
SELECT e->>'content' AS bob_content FROM jsonb_array_elements(agentcache.get_context('regress_bob:1')) e;
RESET ROLE;
DROP POLICY turns_by_role ON agentcache.turns;
ALTER TABLE agentcache.turns DISABLE ROW LEVEL SECURITY;
SELECT agentcache.forget_session('regress_bob:1') + agentcache.forget_session('regress_carol:1') AS forgotten;
SELECT agentcache.dedup_release('regress-rls-m2') AS claim_row_left;

-- ---------------------------------------------------------------- constraints an administrator adds
-- NOT NULL on turns.meta: add_turn, inbound and outbound without meta fail as INSERT would
ALTER TABLE agentcache.turns ALTER meta SET NOT NULL;
SELECT sqlstate_of($$SELECT agentcache.add_turn('regress-c:1', 'user', 'no meta')$$) AS add_turn_null_meta;
SELECT sqlstate_of($$SELECT agentcache.inbound('none', 'regress-c-m', 'regress-c:1', 'no meta')$$) AS inbound_null_meta;
SELECT agentcache.dedup_begin('regress-c-o') AS claimed;
SELECT sqlstate_of($$SELECT agentcache.outbound('regress-c-o', 'regress-c:1', 'a reply')$$) AS outbound_null_meta;
SELECT agentcache.outbound('regress-c-o', 'regress-c:1', 'a reply', '{"model": "m"}') > 0 AS outbound_with_meta;
SELECT agentcache.add_turn('regress-c:1', 'user', 'with meta', '{}') > 0 AS with_meta;
ALTER TABLE agentcache.turns ALTER meta DROP NOT NULL;
SELECT agentcache.dedup_release('regress-c-m') AS inbound_left_a_row, agentcache.dedup_release('regress-c-o') AS outbound_row;
-- a CHECK is judged by its expression, whatever its name
ALTER TABLE agentcache.turns ADD CONSTRAINT regress_short CHECK (pg_catalog.length(content) OPERATOR(pg_catalog.<) 20);
SELECT sqlstate_of($$SELECT agentcache.add_turn('regress-c:1', 'user', 'a content longer than twenty')$$) AS too_long;
SELECT agentcache.add_turn('regress-c:1', 'user', 'short') AS short_ok;
ALTER TABLE agentcache.turns DROP CONSTRAINT regress_short;
ALTER TABLE agentcache.turns DROP CONSTRAINT turns_role_check,
  ADD CONSTRAINT turns_role_check CHECK (role OPERATOR(pg_catalog.<>) 'tool');
SELECT sqlstate_of($$SELECT agentcache.add_turn('regress-c:1', 'tool', 'same name, other rule')$$) AS renamed_check;
SELECT agentcache.add_turn('regress-c:1', 'user', 'still fine') AS user_ok;
ALTER TABLE agentcache.turns DROP CONSTRAINT turns_role_check,
  ADD CONSTRAINT turns_role_check CHECK (role OPERATOR(pg_catalog.=) ANY (ARRAY['user', 'assistant', 'system', 'tool']::pg_catalog.text[]));
SELECT agentcache.add_turn('regress-c:1', 'tool', 'back to the installed rule') AS tool_ok;
SELECT seq, role, content, meta FROM agentcache.turns WHERE session_id OPERATOR(pg_catalog.=) 'regress-c:1' ORDER BY seq;
SELECT agentcache.forget_session('regress-c:1') AS forgotten;
-- NOT NULL on entries.expires_at: a put that never expires fails as the upsert would
SELECT agentcache.configure_namespace('regress-forever', NULL);
ALTER TABLE agentcache.entries ALTER expires_at SET NOT NULL;
SELECT sqlstate_of($$SELECT agentcache.put('regress-forever', 'k', '1')$$) AS put_null_expiry;
SELECT agentcache.put('regress-forever', 'k', '1', '1 hour') AS put_with_ttl;
ALTER TABLE agentcache.entries ALTER expires_at DROP NOT NULL;
-- a CHECK on entries
ALTER TABLE agentcache.entries ADD CONSTRAINT regress_no_null_json
  CHECK (pg_catalog.jsonb_typeof(value) OPERATOR(pg_catalog.<>) 'null');
SELECT sqlstate_of($$SELECT agentcache.put('regress-forever', 'k2', 'null')$$) AS put_json_null;
SELECT sqlstate_of($$SELECT agentcache.put('regress-forever', 'k', 'null')$$) AS reput_json_null;
SELECT agentcache.put('regress-forever', 'k2', '2') AS put_ok;
ALTER TABLE agentcache.entries DROP CONSTRAINT regress_no_null_json;
SELECT key, value, expires_at IS NOT NULL AS expires FROM agentcache.entries
 WHERE namespace OPERATOR(pg_catalog.=) 'regress-forever' ORDER BY key;
SELECT agentcache.clear('regress-forever') AS cleared;
DELETE FROM agentcache.namespaces WHERE namespace OPERATOR(pg_catalog.=) 'regress-forever';

-- ---------------------------------------------------------------- replica mode (logical-replication apply)
SELECT t.tgname, t.tgenabled FROM pg_trigger t
 WHERE t.tgrelid IN ('agentcache.turns'::regclass, 'agentcache.namespaces'::regclass) AND NOT t.tgisinternal
 ORDER BY 1;
SELECT agentcache.add_turn('regress-r:1', 'user', 'one'), agentcache.add_turn('regress-r:1', 'user', 'two');
SELECT agentcache.warm_session('regress-r:1') AS cached;
SET session_replication_role = replica;
DELETE FROM agentcache.turns WHERE session_id OPERATOR(pg_catalog.=) 'regress-r:1' AND seq OPERATOR(pg_catalog.=) 2;
RESET session_replication_role;
-- the deleted turn is not served from the cache
SELECT e->>'content' AS content FROM jsonb_array_elements(agentcache.get_context('regress-r:1')) e;
SELECT agentcache.forget_session('regress-r:1') AS forgotten;

DROP OWNED BY regress_bob;
DROP OWNED BY regress_carol;
DROP ROLE regress_bob, regress_carol;
