--
-- upgrade: ALTER EXTENSION agentcache UPDATE from the released 0.1.0 keeps
-- every row of every tier and every function working, and leaves the same
-- schema as a fresh CREATE EXTENSION of the default version. Runs in a
-- database of its own (dropped at the end), after every other suite.
--
CREATE DATABASE agentcache_upgrade;
\c agentcache_upgrade
SET TimeZone = 'UTC';

-- The extension's schema as text lines: every member object and, for each,
-- what defines it (function definitions with their ACLs, columns, defaults,
-- constraints, indexes, triggers with their enabled state, views, comments,
-- relation options and persistence, config-dump tables, initial privileges).
-- Names only, no OIDs, so two installs can be compared.
CREATE FUNCTION ext_schema() RETURNS SETOF text LANGUAGE sql AS $fn$
  WITH ext AS (SELECT oid, extconfig, extcondition FROM pg_extension WHERE extname = 'agentcache'),
  members AS (
    SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
  rels AS (SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
  SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM members
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid) || E'\nacl ' || coalesce(p.proacl::text, '-')
    FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  UNION ALL
  SELECT format('relation %s kind=%s persistence=%s options=%s acl=%s', r.oid::regclass, r.relkind, r.relpersistence,
                coalesce(r.reloptions::text, '-'), coalesce(r.relacl::text, '-'))
    FROM rels r
  UNION ALL
  SELECT format('column %s.%s %s%s%s collation=%s position=%s', r.oid::regclass, a.attname,
                format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), ''), a.attcollation::regcollation, a.attnum)
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  UNION ALL
  SELECT format('constraint %s %s %s', co.conrelid::regclass, co.conname, pg_get_constraintdef(co.oid))
    FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rels r ON r.oid = i.indrelid
  UNION ALL
  SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
    FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT format('view %s %s', r.oid::regclass, pg_get_viewdef(r.oid)) FROM rels r WHERE r.relkind = 'v'
  UNION ALL
  SELECT format('comment %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
    FROM pg_description d JOIN members m ON m.classid = d.classoid AND m.objid = d.objoid
  UNION ALL
  SELECT format('config %s %s', c.rel::regclass, c.cond) FROM ext, unnest(ext.extconfig, ext.extcondition) AS c(rel, cond)
  UNION ALL
  SELECT format('init_privs %s %s', pg_describe_object(ip.classoid, ip.objoid, ip.objsubid), ip.initprivs)
    FROM pg_init_privs ip JOIN members m ON m.classid = ip.classoid AND m.objid = ip.objoid
   WHERE ip.privtype = 'e'
  UNION ALL
  SELECT format('schema %s owner-is-superuser=%s acl=%s', n.nspname, r.rolsuper, coalesce(n.nspacl::text, '-'))
    FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = 'agentcache'
$fn$;

-- ---------------------------------------------------------------- 0.1.0, filled
CREATE EXTENSION agentcache VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'agentcache';
SELECT name, default_version FROM pg_available_extensions WHERE name = 'agentcache';
SELECT source, target, path FROM pg_extension_update_paths('agentcache') ORDER BY source, target;

-- memory
SELECT agentcache.add_turn('up:1', 'system', 'You are the clinic assistant.');
SELECT agentcache.add_turn('up:1', 'user', 'Olá, posso marcar para quinta?', '{"channel": "whatsapp"}');
SELECT agentcache.add_turn('up:1', 'assistant', 'Quinta às 10:30 está livre.');
SELECT agentcache.add_turn('up:2', 'user', 'second session');
SELECT agentcache.warm_session('up:1');
-- ttl
SELECT agentcache.configure_namespace('catalog', '1 hour', 100);
SELECT agentcache.put('catalog', 'sku-1', '{"price": 19.9}', NULL, '{tenant:7}');
SELECT agentcache.put('catalog', 'sku-2', '{"price": 5}', '1 day', '{tenant:8}');
SELECT agentcache.put('ai', 'prompt-1', '"cached answer"', '2 hours');
-- dedup: this library (0.2.0) refuses to claim on a 0.1.0 table (55000, with
-- the hint to update); the rows 0.1.0 wrote: one completed, one failed, one
-- processing whose holder is gone (with the fingerprint of conv-1/hello)
SELECT agentcache.dedup_begin('msg-early') AS claim_before_update;
INSERT INTO agentcache.dedup (message_id, fingerprint, state, holder_pid, attempts, error, updated_at, expires_at,
                              claim_window) VALUES
  ('msg-done', NULL, 'completed', NULL, 1, NULL, now(), now() + interval '10 minutes', NULL),
  ('msg-failed', NULL, 'failed', NULL, 1, 'LLM timeout', now(), now() + interval '10 minutes', NULL),
  ('msg-held', encode(sha256(int8send(octet_length('conv-1')) || convert_to('conv-1', 'UTF8') || convert_to('hello', 'UTF8')), 'hex'),
   'processing', 0, 1, NULL, now(), NULL, '1 hour');
-- maps
CREATE TABLE clinics (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE integrations (instance text PRIMARY KEY, clinic_id int NOT NULL REFERENCES clinics);
INSERT INTO clinics VALUES (1, 'Clínica Sol'), (2, 'Dental Norte');
INSERT INTO integrations VALUES ('wa-1', 1), ('wa-2', 2);
SELECT agentcache.define_map('instances', $q$
  SELECT i.instance, jsonb_build_object('clinic_id', c.id, 'clinic', c.name)
    FROM integrations i JOIN clinics c ON c.id = i.clinic_id $q$, '1 hour');

-- every row, as it is before the update
CREATE TABLE before_turns AS SELECT * FROM agentcache.turns;
CREATE TABLE before_entries AS SELECT * FROM agentcache.entries;
CREATE TABLE before_namespaces AS SELECT * FROM agentcache.namespaces;
CREATE TABLE before_dedup AS SELECT * FROM agentcache.dedup;
CREATE TABLE before_maps AS SELECT name, query, refresh, owner, search_path, entries FROM agentcache.maps;
SELECT (SELECT count(*) FROM before_turns) AS turns, (SELECT count(*) FROM before_entries) AS entries,
       (SELECT count(*) FROM before_namespaces) AS namespaces, (SELECT count(*) FROM before_dedup) AS dedup,
       (SELECT count(*) FROM before_maps) AS maps;

-- ---------------------------------------------------------------- the update (the default version)
ALTER EXTENSION agentcache UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'agentcache';

-- every row survived, unchanged (both directions of EXCEPT are empty)
SELECT 'turns' AS t, count(*) FROM ((TABLE before_turns EXCEPT TABLE agentcache.turns)
                                   UNION ALL (TABLE agentcache.turns EXCEPT TABLE before_turns)) d
UNION ALL
SELECT 'entries', count(*) FROM ((TABLE before_entries EXCEPT TABLE agentcache.entries)
                                UNION ALL (TABLE agentcache.entries EXCEPT TABLE before_entries)) d
UNION ALL
SELECT 'namespaces', count(*) FROM ((TABLE before_namespaces EXCEPT TABLE agentcache.namespaces)
                                   UNION ALL (TABLE agentcache.namespaces EXCEPT TABLE before_namespaces)) d
UNION ALL
SELECT 'dedup', count(*) FROM ((TABLE before_dedup EXCEPT SELECT message_id, fingerprint, state, holder_pid, attempts,
                                   error, updated_at, expires_at, claim_window FROM agentcache.dedup)
                              UNION ALL (SELECT message_id, fingerprint, state, holder_pid, attempts, error, updated_at,
                                                expires_at, claim_window FROM agentcache.dedup
                                         EXCEPT TABLE before_dedup)) d
UNION ALL
SELECT 'maps', count(*) FROM ((TABLE before_maps
                               EXCEPT SELECT name, query, refresh, owner, search_path, entries FROM agentcache.maps)
                              UNION ALL (SELECT name, query, refresh, owner, search_path, entries FROM agentcache.maps
                                         EXCEPT TABLE before_maps)) d;

-- ---------------------------------------------------------------- every function works after it
-- memory: the cached session and the table agree
SELECT jsonb_agg(jsonb_build_array(e->>'seq', e->>'role', e->>'content', e->'meta'))
  FROM jsonb_array_elements(agentcache.get_context('up:1')) e;
SELECT seq, role, content, meta FROM agentcache.get_turns('up:1', 2);
SELECT agentcache.add_turn('up:1', 'user', 'after the update');
SELECT jsonb_array_length(agentcache.get_context('up:1')) AS turns,
       agentcache.get_context('up:1', 1)->0->>'content' AS newest;
SELECT agentcache.end_session('up:2') AS ended, agentcache.warm_session('up:2') AS warmed;
SELECT agentcache.forget_session('up:2') AS forgotten;
-- ttl
SELECT agentcache.get('catalog', 'sku-1') AS sku1, agentcache.get('ai', 'prompt-1') AS prompt1;
SELECT agentcache.fetch('catalog', 'sku-2', 'SELECT 1') AS cached_hit;
SELECT agentcache.fetch('catalog', 'sku-3', $$SELECT jsonb_build_object('price', 7)$$) AS fetched;
SELECT agentcache.invalidate_tag('tenant:8') AS invalidated, agentcache.get('catalog', 'sku-2') IS NULL AS gone;
SELECT agentcache.put('catalog', 'sku-4', '{"price": 1}');
SELECT namespace, key FROM agentcache.entries ORDER BY 1, 2;
-- dedup (the processing message's holder is gone: taken over, attempts 2)
SELECT agentcache.dedup_begin('msg-done') AS done, agentcache.dedup_begin('msg-failed') AS failed,
       agentcache.dedup_begin('msg-held', 'conv-1', 'hello', '1 hour') AS held;
SELECT state, attempts, fingerprint IS NOT NULL AS has_fingerprint, error FROM agentcache.dedup_state('msg-held');
SELECT agentcache.dedup_complete('msg-held');
SELECT agentcache.dedup_begin('msg-new', 'conv-1', 'hello') AS same_fingerprint;
-- maps
SELECT agentcache.lookup('instances', 'wa-1') AS wa1, agentcache.resolve_instance('wa-2') AS wa2;
SELECT agentcache.refresh_map('instances') AS refreshed;
-- the hot path
SELECT r - 'context' AS result, jsonb_array_length(r->'context') AS context_turns
  FROM agentcache.inbound('wa-1', 'msg-in', 'up:3', 'first message') r;
SELECT agentcache.outbound('msg-in', 'up:3', 'the reply') AS reply_seq;
SELECT agentcache.inbound('wa-1', 'msg-in', 'up:3', 'first message')->>'dedup' AS redelivered;
-- observability
SELECT tier, name, entries FROM agentcache.stats WHERE tier IN ('ttl', 'map') ORDER BY tier, name;
SELECT agentcache.health()->'preloaded' AS preloaded, agentcache.health()->'maps'->'instances'->'entries' AS map_entries;

-- ---------------------------------------------------------------- same schema as a fresh install
CREATE TABLE upgraded_schema AS SELECT ext_schema() AS line;
SELECT count(*) > 100 AS described FROM upgraded_schema;
SELECT agentcache.drop_map('instances');
DROP EXTENSION agentcache;
CREATE EXTENSION agentcache;
SELECT extversion FROM pg_extension WHERE extname = 'agentcache';
CREATE TABLE fresh_schema AS SELECT ext_schema() AS line;
-- no line of one that the other lacks
(TABLE upgraded_schema EXCEPT TABLE fresh_schema) UNION ALL (TABLE fresh_schema EXCEPT TABLE upgraded_schema);
-- and the comparison would see a difference: one function's volatility, one
-- trigger's enabled state, one column's default
BEGIN;
ALTER FUNCTION agentcache.get(text, text) STABLE;
ALTER TABLE agentcache.turns DISABLE TRIGGER turns_changed;
ALTER TABLE agentcache.entries ALTER COLUMN tags SET DEFAULT '{x}';
SELECT split_part(line, E'\n', 1) AS changed FROM (SELECT ext_schema() EXCEPT TABLE fresh_schema) d(line) ORDER BY 1;
ROLLBACK;

-- ---------------------------------------------------------------- grants survive the update
-- the update drops and re-creates the functions whose signature changes; an
-- administrator's grants on them (EXECUTE revoked from PUBLIC, granted to one
-- role) go over to the new ones, and a function it leaves alone keeps PUBLIC
DROP EXTENSION agentcache;
CREATE EXTENSION agentcache VERSION '0.1.0';
CREATE ROLE regress_up_app;
REVOKE EXECUTE ON FUNCTION agentcache.dedup_begin(text, text, text, interval), agentcache.dedup_state(text),
  agentcache.get_context(text, integer, integer), agentcache.get_turns(text, integer),
  agentcache.inbound(text, text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentcache.dedup_begin(text, text, text, interval), agentcache.dedup_state(text),
  agentcache.get_context(text, integer, integer), agentcache.get_turns(text, integer),
  agentcache.inbound(text, text, text, text, integer) TO regress_up_app;
ALTER EXTENSION agentcache UPDATE;
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may,
       has_function_privilege('regress_up_app', p.oid, 'EXECUTE') AS app_may
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace
   AND p.proname IN ('dedup_begin', 'dedup_state', 'get_context', 'get_turns', 'inbound', 'add_turn')
 ORDER BY 1::text;
DROP EXTENSION agentcache;
DROP ROLE regress_up_app;

-- ---------------------------------------------------------------- clean up
\c contrib_regression
DROP DATABASE agentcache_upgrade;
