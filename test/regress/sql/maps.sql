--
-- maps: prewarmed lookup maps (API.md section 4 and "Precise semantics"):
-- define/lookup/resolve_instance/refresh/drop, every documented SQLSTATE and
-- its order, the query's shape, ownership and privileges (the query runs as
-- the map's owner with the search_path of define_map), READ ONLY
-- transactions, refresh_trigger with the worker (test/preload.conf points
-- agentcache.database at this database), map_memory (default 16MB), stats()
-- and health().
--
SET TimeZone = 'UTC';


-- Polls a boolean SQL expression every 50 ms for up to 10 s; whether it
-- became true. Each poll takes a new snapshot (volatile function).

-- the catalog
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'agentcache' AND table_name = 'maps' AND column_name IN ('name', 'query', 'refresh', 'owner')
 ORDER BY ordinal_position;
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace
   AND p.proname IN ('define_map', 'lookup', 'resolve_instance', 'refresh_map', 'drop_map', 'refresh_trigger')
 ORDER BY p.proname;

-- ---------------------------------------------------------------- define, lookup, resolve_instance
CREATE TABLE clinics (id int PRIMARY KEY, name text NOT NULL, tenant text NOT NULL);
CREATE TABLE integrations (instance text PRIMARY KEY, clinic_id int NOT NULL REFERENCES clinics, active boolean NOT NULL);
INSERT INTO clinics VALUES (1, 'Clínica Sol', 't-1'), (2, 'Dental Norte', 't-2');
INSERT INTO integrations VALUES ('wa-100', 1, true), ('wa-200', 2, true), ('wa-201', 2, true), ('wa-999', 1, false);

SELECT agentcache.define_map('instances', $q$
  SELECT i.instance, jsonb_build_object('clinic_id', c.id, 'clinic', c.name, 'tenant', c.tenant)
    FROM integrations i JOIN clinics c ON c.id = i.clinic_id
   WHERE i.active $q$);
SELECT name, refresh, owner, entries, last_error IS NULL AS no_error, last_refresh IS NOT NULL AS refreshed
  FROM agentcache.maps ORDER BY name;
-- hits
SELECT agentcache.lookup('instances', 'wa-100') AS wa100,
       agentcache.lookup('instances', 'wa-201') AS wa201;
SELECT agentcache.resolve_instance('wa-200') AS wa200;
SELECT agentcache.resolve_instance('wa-200') = agentcache.lookup('instances', 'wa-200') AS same;
-- misses: NULL (inactive, unknown, empty, case differs)
SELECT agentcache.lookup('instances', 'wa-999') IS NULL AS inactive,
       agentcache.lookup('instances', 'nope') IS NULL AS unknown,
       agentcache.lookup('instances', '') IS NULL AS empty,
       agentcache.resolve_instance('WA-100') IS NULL AS case_sensitive;

-- ---------------------------------------------------------------- unknown map: 42704
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.lookup('no_such_map', 'k')$$),
  ($$SELECT agentcache.lookup('INSTANCES', 'wa-100')$$),
  ($$SELECT agentcache.refresh_map('no_such_map')$$)
) v(q);
-- drop_map of an unknown map is no error
SELECT agentcache.drop_map('no_such_map') AS dropped;

-- ---------------------------------------------------------------- argument errors and their order
-- NULL: 22004 (before every other check)
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.define_map(NULL, 'SELECT ''k''::text, ''1''::jsonb')$$),
  ($$SELECT agentcache.define_map('m', NULL)$$),
  ($$SELECT agentcache.define_map('m', 'SELECT ''k''::text, ''1''::jsonb', NULL)$$),
  ($$SELECT agentcache.define_map('', NULL, '0')$$),
  ($$SELECT agentcache.define_map(repeat('x', 64), 'SELECT 1', NULL)$$),
  ($$SELECT agentcache.lookup(NULL, 'k')$$),
  ($$SELECT agentcache.lookup('instances', NULL)$$),
  ($$SELECT agentcache.lookup('no_such_map', NULL)$$),
  ($$SELECT agentcache.lookup(NULL, NULL)$$),
  ($$SELECT agentcache.resolve_instance(NULL)$$),
  ($$SELECT agentcache.refresh_map(NULL)$$),
  ($$SELECT agentcache.drop_map(NULL)$$)
) v(q);
-- empty name, refresh <= 0: 22023; name longer than 63 bytes: 54000
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.define_map('', 'SELECT ''k''::text, ''1''::jsonb')$$),
  ($$SELECT agentcache.define_map('m', 'SELECT ''k''::text, ''1''::jsonb', '0')$$),
  ($$SELECT agentcache.define_map('m', 'SELECT ''k''::text, ''1''::jsonb', '-1 hour')$$),
  ($$SELECT agentcache.define_map('m', 'SELECT ''k''::text, ''1''::jsonb', '1 month -30 days')$$),
  ($$SELECT agentcache.define_map('', 'SELECT ''k''::text, ''1''::jsonb', '0')$$),
  ($$SELECT agentcache.define_map(repeat('x', 64), 'SELECT ''k''::text, ''1''::jsonb')$$),
  ($$SELECT agentcache.define_map(repeat('é', 32), 'SELECT ''k''::text, ''1''::jsonb')$$),
  ($$SELECT agentcache.refresh_map('')$$),
  ($$SELECT agentcache.refresh_map(repeat('x', 64))$$),
  ($$SELECT agentcache.drop_map('')$$),
  ($$SELECT agentcache.drop_map(repeat('x', 64))$$),
  ($$SELECT agentcache.lookup(repeat('x', 64), 'k')$$)
) v(q);
-- nothing was defined by the failed calls
SELECT name FROM agentcache.maps ORDER BY name;
-- 63 bytes is accepted
SELECT agentcache.define_map(repeat('x', 63), $$SELECT 'k'::text, '"v63"'::jsonb$$) AS defined63,
       agentcache.lookup(repeat('x', 63), 'k') AS v63,
       agentcache.drop_map(repeat('x', 63)) AS dropped63;
SELECT agentcache.define_map(repeat('é', 31) || 'x', $$SELECT 'k'::text, '"v63b"'::jsonb$$) AS defined63b,
       agentcache.lookup(repeat('é', 31) || 'x', 'k') AS v63b,
       agentcache.drop_map(repeat('é', 31) || 'x') AS dropped63b;

-- ---------------------------------------------------------------- the query's shape: 42804
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.define_map('shape', 'SELECT ''k''::text')$$),
  ($$SELECT agentcache.define_map('shape', 'SELECT ''k''::text, ''1''::jsonb, 3')$$),
  ($$SELECT agentcache.define_map('shape', 'SELECT 1, ''1''::jsonb')$$),
  ($$SELECT agentcache.define_map('shape', 'SELECT ''k''::text, ''v''::text')$$),
  ($$SELECT agentcache.define_map('shape', 'SELECT ''1''::jsonb, ''k''::text')$$),
  ($$SELECT agentcache.define_map('shape', 'SELECT ''k''::char(3), ''1''::jsonb')$$),
  ($$SELECT agentcache.define_map('shape', 'SELECT ''k''::text, 1')$$),
  -- an empty result has a shape too
  ($$SELECT agentcache.define_map('shape', 'SELECT ''k''::text, 1 WHERE false')$$)
) v(q);
-- a failing query propagates its error; nothing is defined
SELECT sqlstate_of($$SELECT agentcache.define_map('shape', 'SELEC 1')$$) AS syntax,
       sqlstate_of($$SELECT agentcache.define_map('shape', 'SELECT k, v FROM no_such_table')$$) AS no_table,
       sqlstate_of($$SELECT agentcache.define_map('shape', 'SELECT ''k''::text, ''{''::jsonb')$$) AS bad_json;
SELECT sqlstate_of($$SELECT agentcache.lookup('shape', 'k')$$) AS not_defined,
       count(*) AS catalog_rows FROM agentcache.maps WHERE name = 'shape';
-- json is accepted and converted to jsonb; varchar keys are accepted; the
-- key may be any text; a NULL value is a miss
SELECT agentcache.define_map('shape', $q$
  SELECT k::varchar(10), v::json FROM (VALUES
    ('j', '{"b": 1, "a": [1, 2.50], "a": "dup"}'),
    ('n', 'null'),
    ('s', '"text"'),
    ('é😀', '42'),
    ('', '"empty key"'),
    ('sqlnull', NULL)) AS t(k, v) $q$);
SELECT agentcache.lookup('shape', 'j') AS j, jsonb_typeof(agentcache.lookup('shape', 'j')) AS j_type,
       agentcache.lookup('shape', 'n') AS n, agentcache.lookup('shape', 'n') IS NULL AS n_is_sql_null,
       agentcache.lookup('shape', 's') AS s, agentcache.lookup('shape', 'é😀') AS emoji,
       agentcache.lookup('shape', '') AS empty_key,
       agentcache.lookup('shape', 'sqlnull') IS NULL AS sqlnull_miss;
SELECT agentcache.refresh_map('shape') AS entries;

-- ---------------------------------------------------------------- NULL keys skipped, duplicate keys: 23505
SELECT agentcache.define_map('keys', $q$
  SELECT k, to_jsonb(v) FROM (VALUES ('a', 1), (NULL, 2), ('b', 3), (NULL, 4)) AS t(k, v) $q$) AS defined;
SELECT entries FROM agentcache.maps WHERE name = 'keys';
SELECT agentcache.lookup('keys', 'a') AS a, agentcache.lookup('keys', 'b') AS b;
SELECT agentcache.refresh_map('keys') AS entries;
-- replacing with a query that yields a duplicate: 23505, the previous version keeps serving
SELECT sqlstate_of($q$SELECT agentcache.define_map('keys',
  $$SELECT k, to_jsonb(v) FROM (VALUES ('a', 10), ('b', 30), ('a', 11)) AS t(k, v)$$)$q$) AS dup;
SELECT agentcache.lookup('keys', 'a') AS a, agentcache.lookup('keys', 'b') AS b;
SELECT position('VALUES (''a'', 1)' IN query) > 0 AS old_query_kept, entries
  FROM agentcache.maps WHERE name = 'keys';
-- the same through refresh_map
CREATE TABLE key_src (k text, v int);
INSERT INTO key_src VALUES ('x', 1), ('y', 2);
SELECT agentcache.define_map('keys2', 'SELECT k, to_jsonb(v) FROM key_src');
INSERT INTO key_src VALUES ('x', 3);
SELECT sqlstate_of($$SELECT agentcache.refresh_map('keys2')$$) AS dup;
SELECT agentcache.lookup('keys2', 'x') AS x, agentcache.lookup('keys2', 'y') AS y;
DELETE FROM key_src WHERE v = 3;
SELECT agentcache.refresh_map('keys2') AS entries;

-- ---------------------------------------------------------------- refresh_map picks up changes
SELECT agentcache.refresh_map('instances') AS entries;
UPDATE clinics SET name = 'Clínica Sol Nascente' WHERE id = 1;
UPDATE integrations SET active = true WHERE instance = 'wa-999';
DELETE FROM integrations WHERE instance = 'wa-201';
-- not before refresh_map (no trigger yet)
SELECT agentcache.resolve_instance('wa-100')->>'clinic' AS clinic,
       agentcache.resolve_instance('wa-999') IS NULL AS wa999_absent,
       agentcache.resolve_instance('wa-201') IS NOT NULL AS wa201_present;
SELECT agentcache.refresh_map('instances') AS entries;
SELECT agentcache.resolve_instance('wa-100')->>'clinic' AS clinic,
       agentcache.resolve_instance('wa-999')->>'clinic' AS wa999,
       agentcache.resolve_instance('wa-201') IS NULL AS wa201_gone;
SELECT entries FROM agentcache.maps WHERE name = 'instances';

-- ---------------------------------------------------------------- map_memory: 53200
SELECT (agentcache.health()->'map_memory'->>'limit')::bigint AS map_memory_limit;
-- replacing a small map with ~20 MB of values: 53200, the previous version keeps serving
SELECT agentcache.define_map('big', $$SELECT 'k' || g, to_jsonb(g) FROM generate_series(1, 3) g$$) AS defined;
SELECT (agentcache.health()->'map_memory'->>'used')::bigint AS used0 \gset
SELECT sqlstate_of($q$SELECT agentcache.define_map('big',
  $$SELECT 'k' || g, to_jsonb(repeat('x', 1000000)) FROM generate_series(1, 20) g$$)$q$) AS too_big;
SELECT agentcache.lookup('big', 'k1') AS k1, agentcache.lookup('big', 'k4') IS NULL AS k4_absent;
SELECT position('repeat' IN query) = 0 AS old_query_kept, entries FROM agentcache.maps WHERE name = 'big';
SELECT (agentcache.health()->'map_memory'->>'used')::bigint = :used0 AS used_unchanged;
-- the same through refresh_map
CREATE TABLE big_src (k text PRIMARY KEY, size int NOT NULL);
INSERT INTO big_src VALUES ('a', 1), ('b', 2);
SELECT agentcache.define_map('big2', 'SELECT k, to_jsonb(repeat(''x'', size)) FROM big_src');
INSERT INTO big_src SELECT 'g' || g, 1000000 FROM generate_series(1, 20) g;
SELECT sqlstate_of($$SELECT agentcache.refresh_map('big2')$$) AS too_big;
SELECT agentcache.lookup('big2', 'a') AS a, agentcache.lookup('big2', 'b') AS b,
       agentcache.lookup('big2', 'g1') IS NULL AS g1_absent;
SELECT (agentcache.health()->'map_memory'->>'used')::bigint
         <= (agentcache.health()->'map_memory'->>'limit')::bigint AS used_within_limit;
-- a map that fits again loads
DELETE FROM big_src WHERE size > 2;
SELECT agentcache.refresh_map('big2') AS entries;
SELECT agentcache.drop_map('big') AS dropped, agentcache.drop_map('big2') AS dropped2;

-- ---------------------------------------------------------------- drop_map
SELECT agentcache.drop_map('keys') AS first, agentcache.drop_map('keys') AS second;
SELECT sqlstate_of($$SELECT agentcache.lookup('keys', 'a')$$) AS after_drop,
       sqlstate_of($$SELECT agentcache.refresh_map('keys')$$) AS refresh_after_drop;
SELECT count(*) AS catalog_rows FROM agentcache.maps WHERE name = 'keys';
-- a dropped name can be defined again
SELECT agentcache.define_map('keys', $$SELECT 'again'::text, 'true'::jsonb$$);
SELECT agentcache.lookup('keys', 'again') AS again, agentcache.lookup('keys', 'a') IS NULL AS old_gone;
SELECT agentcache.drop_map('keys') AS dropped;

-- ---------------------------------------------------------------- ownership and privileges
CREATE ROLE regress_map_owner NOLOGIN;
CREATE ROLE regress_map_member NOLOGIN IN ROLE regress_map_owner;
CREATE ROLE regress_map_other NOLOGIN;
GRANT USAGE ON SCHEMA agentcache TO regress_map_owner, regress_map_member, regress_map_other;
GRANT EXECUTE ON FUNCTION agentcache.define_map(text, text, interval), agentcache.drop_map(text)
   TO regress_map_owner, regress_map_other;
CREATE TABLE priv_src (k text PRIMARY KEY, v int NOT NULL);
INSERT INTO priv_src VALUES ('p1', 1), ('p2', 2);
CREATE TABLE secret_src (k text, v int);
INSERT INTO secret_src VALUES ('s', 0);
GRANT SELECT ON priv_src TO regress_map_owner;

-- the owner defines a map; the catalog records it as owner
SET ROLE regress_map_owner;
SELECT agentcache.define_map('owned', 'SELECT k, to_jsonb(v) FROM priv_src');
SELECT agentcache.lookup('owned', 'p1') AS p1;
-- the query runs as its owner: a table the owner cannot read fails
SELECT sqlstate_of($$SELECT agentcache.define_map('owned_secret', 'SELECT k, to_jsonb(v) FROM secret_src')$$) AS no_select;
RESET ROLE;
SELECT name, owner FROM agentcache.maps WHERE name LIKE 'owned%' ORDER BY name;

-- a non-owner: refresh_map, drop_map, define_map (replace) 42501; nothing changes
SET ROLE regress_map_other;
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.refresh_map('owned')$$),
  ($$SELECT agentcache.drop_map('owned')$$),
  ($$SELECT agentcache.define_map('owned', 'SELECT ''hijack''::text, ''1''::jsonb')$$),
  -- an unknown map: 42704 comes before 42501
  ($$SELECT agentcache.refresh_map('no_such_map')$$),
  -- lookup needs no ownership
  ($$SELECT agentcache.lookup('owned', 'p2')$$)
) v(q);
RESET ROLE;
SELECT agentcache.lookup('owned', 'hijack') IS NULL AS not_replaced,
       (SELECT query FROM agentcache.maps WHERE name = 'owned') AS query;

-- a member of the owner role may refresh
SET ROLE regress_map_member;
SELECT agentcache.refresh_map('owned') AS entries;
RESET ROLE;

-- the superuser replaces the map: the original owner stays, and the new
-- query runs as that owner
SELECT agentcache.define_map('owned', 'SELECT k, to_jsonb(v * 10) FROM priv_src', '2 hours');
SELECT name, owner, refresh FROM agentcache.maps WHERE name = 'owned';
SELECT agentcache.lookup('owned', 'p1') AS p1;
SELECT sqlstate_of($$SELECT agentcache.define_map('owned', 'SELECT k, to_jsonb(v) FROM secret_src')$$) AS as_owner;
SELECT agentcache.lookup('owned', 'p1') AS p1_kept, owner FROM agentcache.maps WHERE name = 'owned';

-- the query runs as the owner, not the caller: once the owner loses SELECT,
-- even the superuser's refresh_map fails, and the old values keep serving
REVOKE SELECT ON priv_src FROM regress_map_owner;
UPDATE priv_src SET v = 7 WHERE k = 'p1';
SELECT sqlstate_of($$SELECT agentcache.refresh_map('owned')$$) AS superuser_refresh;
SELECT agentcache.lookup('owned', 'p1') AS p1_old, agentcache.lookup('owned', 'p2') AS p2_old;
-- the worker's refresh fails the same way and records last_error
CREATE TRIGGER priv_src_refresh AFTER INSERT OR UPDATE OR DELETE ON priv_src
   FOR EACH STATEMENT EXECUTE FUNCTION agentcache.refresh_trigger('owned');
UPDATE priv_src SET v = 8 WHERE k = 'p1';
SELECT wait_until($$(SELECT last_error IS NOT NULL FROM agentcache.maps WHERE name = 'owned')$$) AS error_recorded;
SELECT last_error FROM agentcache.maps WHERE name = 'owned';
SELECT agentcache.health()->'maps'->'owned'->>'last_error' AS health_last_error;
SELECT agentcache.lookup('owned', 'p1') AS p1_old;
-- with SELECT back, the next refresh works and clears the error
GRANT SELECT ON priv_src TO regress_map_owner;
SELECT agentcache.refresh_map('owned') AS entries;
SELECT agentcache.lookup('owned', 'p1') AS p1_new;
UPDATE priv_src SET v = 9 WHERE k = 'p1';
SELECT wait_until($$agentcache.lookup('owned', 'p1') = '90'$$) AS worker_refreshed;
SELECT wait_until($$(SELECT last_error IS NULL FROM agentcache.maps WHERE name = 'owned')$$) AS error_cleared;
SELECT agentcache.health()->'maps'->'owned'->'last_error' AS health_last_error;

-- a member of the owner role may drop (EXECUTE on drop_map comes with the
-- owner role's privileges)
SET ROLE regress_map_member;
SELECT agentcache.drop_map('owned') AS member_dropped;
RESET ROLE;
SELECT count(*) AS catalog_rows FROM agentcache.maps WHERE name = 'owned';
DROP TRIGGER priv_src_refresh ON priv_src;

-- ---------------------------------------------------------------- search_path stored at define time
CREATE SCHEMA regress_map_sp;
CREATE TABLE regress_map_sp.sp_src (k text, v text);
INSERT INTO regress_map_sp.sp_src VALUES ('k', 'from regress_map_sp');
CREATE TABLE public.sp_src (k text, v text);
INSERT INTO public.sp_src VALUES ('k', 'from public');
SET search_path = regress_map_sp;
SELECT agentcache.define_map('sp', 'SELECT k, to_jsonb(v) FROM sp_src');
RESET search_path;
SELECT search_path FROM agentcache.maps WHERE name = 'sp';
SELECT agentcache.lookup('sp', 'k') AS v;
-- refresh from another search_path: still the stored one
INSERT INTO regress_map_sp.sp_src VALUES ('k2', 'second');
SET search_path = public;
SELECT agentcache.refresh_map('sp') AS entries;
SELECT agentcache.lookup('sp', 'k') AS v, agentcache.lookup('sp', 'k2') AS v2;
SET search_path = pg_catalog;
SELECT agentcache.refresh_map('sp') AS entries;
RESET search_path;
-- and in the worker
CREATE TRIGGER sp_src_refresh AFTER INSERT OR UPDATE OR DELETE ON regress_map_sp.sp_src
   FOR EACH STATEMENT EXECUTE FUNCTION agentcache.refresh_trigger('sp');
UPDATE regress_map_sp.sp_src SET v = 'updated' WHERE k = 'k';
SELECT wait_until($$agentcache.lookup('sp', 'k') = '"updated"'$$) AS worker_refreshed;
SELECT agentcache.lookup('sp', 'k') AS v;
-- the caller's search_path was not changed by any of this
SHOW search_path;
SELECT agentcache.drop_map('sp') AS dropped;

-- ---------------------------------------------------------------- READ ONLY transactions
BEGIN READ ONLY;
SELECT agentcache.lookup('instances', 'wa-100')->>'tenant' AS tenant,
       agentcache.resolve_instance('wa-200')->>'tenant' AS tenant2,
       agentcache.lookup('instances', 'nope') IS NULL AS miss;
SELECT sqlstate_of($$SELECT agentcache.define_map('ro', 'SELECT ''k''::text, ''1''::jsonb')$$) AS define_ro;
SELECT sqlstate_of($$SELECT agentcache.define_map('instances', 'SELECT ''k''::text, ''1''::jsonb')$$) AS replace_ro;
SELECT sqlstate_of($$SELECT agentcache.drop_map('instances')$$) AS drop_ro;
-- 25006 comes after argument errors and before 42704
SELECT sqlstate_of($$SELECT agentcache.define_map(NULL, 'SELECT 1')$$) AS null_first,
       sqlstate_of($$SELECT agentcache.define_map('ro', 'SELECT 1', '0')$$) AS value_first,
       sqlstate_of($$SELECT agentcache.drop_map('no_such_map')$$) AS drop_unknown_ro;
SELECT agentcache.lookup('instances', 'wa-100')->>'tenant' AS still_there;
ROLLBACK;
SELECT agentcache.resolve_instance('wa-100')->>'tenant' AS after_ro,
       sqlstate_of($$SELECT agentcache.lookup('ro', 'k')$$) AS ro_not_defined;
SELECT name FROM agentcache.maps ORDER BY name;

-- ---------------------------------------------------------------- refresh_trigger and the worker
SELECT (agentcache.health()->'worker'->>'alive')::boolean AS worker_alive,
       jsonb_typeof(agentcache.health()->'worker'->'pid') AS pid_type,
       (agentcache.health()->'worker'->>'pid')::int = (
           SELECT pid FROM pg_stat_activity WHERE backend_type = 'agentcache worker') AS pid_matches;
-- statement level on clinics, row level on integrations, both for 'instances'
CREATE TRIGGER clinics_refresh AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clinics
   FOR EACH STATEMENT EXECUTE FUNCTION agentcache.refresh_trigger('instances');
CREATE TRIGGER integrations_refresh AFTER INSERT OR UPDATE OR DELETE ON integrations
   FOR EACH ROW EXECUTE FUNCTION agentcache.refresh_trigger('instances');
-- after COMMIT the worker reloads the map (within about a second)
UPDATE clinics SET tenant = 't-1b' WHERE id = 1;
SELECT wait_until($$agentcache.resolve_instance('wa-100')->>'tenant' = 't-1b'$$) AS statement_trigger;
INSERT INTO integrations VALUES ('wa-300', 2, true);
SELECT wait_until($$agentcache.resolve_instance('wa-300') IS NOT NULL$$) AS row_trigger_insert;
BEGIN;
DELETE FROM integrations WHERE instance = 'wa-300';
UPDATE integrations SET clinic_id = 1 WHERE instance = 'wa-200';
-- not before the commit
SELECT pg_sleep(0.3);
SELECT agentcache.resolve_instance('wa-300') IS NOT NULL AS still_there_before_commit;
SELECT clock_timestamp() AS committed_at \gset
COMMIT;
SELECT wait_until($$agentcache.resolve_instance('wa-300') IS NULL
                   AND agentcache.resolve_instance('wa-200')->>'clinic_id' = '1'$$) AS row_trigger_commit;
-- after ROLLBACK no refresh happens. First let the refresh that COMMIT asked
-- for finish completely: the worker installs the new version, records it in
-- health(), then commits the catalog row (its cycle started after the commit).
SELECT wait_until(format($$(agentcache.health()->'maps'->'instances'->>'last_refresh')::timestamptz > %L
                          AND (SELECT last_refresh > %L FROM agentcache.maps WHERE name = 'instances')$$,
                         :'committed_at', :'committed_at')) AS settled;
SELECT entries FROM agentcache.maps WHERE name = 'instances';
SELECT agentcache.health()->'maps'->'instances'->>'last_refresh' AS lr0 \gset
SELECT last_refresh AS clr0 FROM agentcache.maps WHERE name = 'instances' \gset
BEGIN;
UPDATE clinics SET tenant = 'rolled back' WHERE id = 1;
ROLLBACK;
BEGIN;
INSERT INTO integrations VALUES ('wa-400', 1, true);
ROLLBACK;
SELECT pg_sleep(1.5);
SELECT agentcache.health()->'maps'->'instances'->>'last_refresh' = :'lr0' AS not_refreshed,
       (SELECT last_refresh = :'clr0' FROM agentcache.maps WHERE name = 'instances') AS catalog_not_refreshed,
       agentcache.resolve_instance('wa-100')->>'tenant' AS tenant,
       agentcache.resolve_instance('wa-400') IS NULL AS wa400_absent;
-- a change undone by ROLLBACK TO SAVEPOINT never shows (whether or not the
-- parent's commit asks for a refresh, the map holds committed data)
BEGIN;
SAVEPOINT s;
UPDATE clinics SET tenant = 'savepoint' WHERE id = 1;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT pg_sleep(1.5);
SELECT agentcache.resolve_instance('wa-100')->>'tenant' AS tenant_after_savepoint;
-- TRUNCATE (statement level)
BEGIN;
TRUNCATE integrations, clinics;
COMMIT;
SELECT wait_until($$agentcache.resolve_instance('wa-100') IS NULL$$) AS truncate_trigger;
SELECT wait_until($$(SELECT entries = 0 FROM agentcache.maps WHERE name = 'instances')$$) AS empty_map;
SELECT sqlstate_of($$SELECT agentcache.resolve_instance('wa-100')$$) AS empty_map_lookup;
INSERT INTO clinics VALUES (1, 'Clínica Sol', 't-1');
INSERT INTO integrations VALUES ('wa-100', 1, true);
SELECT wait_until($$agentcache.resolve_instance('wa-100') IS NOT NULL$$) AS reloaded;
-- refresh_trigger outside a trigger
SELECT sqlstate_of($$SELECT agentcache.refresh_trigger()$$) AS not_a_trigger;

-- ---------------------------------------------------------------- stats() and health()
SELECT agentcache.define_map('stat_m', $$SELECT 'k' || g, to_jsonb(g) FROM generate_series(1, 5) g$$);
SELECT tier, name, entries, bytes > 0 AS has_bytes, stale_hits, evictions, expirations, invalidations
  FROM agentcache.stats() WHERE tier = 'map' ORDER BY name;
SELECT count(*) AS map_rows, count(DISTINCT name) AS distinct_names FROM agentcache.stats WHERE tier = 'map';
SELECT hits AS h0, misses AS m0 FROM agentcache.stats() WHERE tier = 'map' AND name = 'stat_m' \gset
SELECT hits AS ih0, misses AS im0 FROM agentcache.stats() WHERE tier = 'map' AND name = 'instances' \gset
SELECT agentcache.lookup('stat_m', 'k1') AS k1, agentcache.lookup('stat_m', 'k2') AS k2,
       agentcache.lookup('stat_m', 'k5') AS k5,
       agentcache.lookup('stat_m', 'k6') IS NULL AS k6, agentcache.lookup('stat_m', 'K1') IS NULL AS big_k1;
SELECT hits - :h0 AS hit_delta, misses - :m0 AS miss_delta
  FROM agentcache.stats() WHERE tier = 'map' AND name = 'stat_m';
-- the other map's counters are unaffected; resolve_instance counts on 'instances'
SELECT hits - :ih0 AS instances_hit_delta, misses - :im0 AS instances_miss_delta
  FROM agentcache.stats() WHERE tier = 'map' AND name = 'instances';
SELECT agentcache.resolve_instance('wa-100') IS NOT NULL AS hit, agentcache.resolve_instance('zz') IS NULL AS miss;
SELECT hits - :ih0 AS instances_hit_delta, misses - :im0 AS instances_miss_delta
  FROM agentcache.stats() WHERE tier = 'map' AND name = 'instances';
-- an unknown map counts nowhere and adds no row
SELECT sqlstate_of($$SELECT agentcache.lookup('no_such_map', 'k')$$) IS NOT NULL AS raised;
SELECT count(*) AS map_rows FROM agentcache.stats() WHERE tier = 'map';
-- replacing the map updates entries/bytes
SELECT bytes AS b0 FROM agentcache.stats() WHERE tier = 'map' AND name = 'stat_m' \gset
SELECT agentcache.define_map('stat_m', $$SELECT 'k' || g, to_jsonb(repeat('v', 100)) FROM generate_series(1, 50) g$$);
SELECT entries, bytes > :b0 AS bytes_grew
  FROM agentcache.stats() WHERE tier = 'map' AND name = 'stat_m';
-- reset_stats zeroes the counters, not the maps
SELECT agentcache.reset_stats();
SELECT name, entries, hits, misses FROM agentcache.stats() WHERE tier = 'map' ORDER BY name;
-- a dropped map has no row
SELECT agentcache.drop_map('stat_m') AS dropped;
SELECT name FROM agentcache.stats() WHERE tier = 'map' ORDER BY name;

SELECT (agentcache.health()->'worker'->>'alive')::boolean AS alive,
       jsonb_typeof(agentcache.health()->'worker'->'pid') AS pid_type,
       (agentcache.health()->'worker'->>'pid') ~ '^[0-9]+$' AS pid_is_integer,
       (agentcache.health()->'worker'->>'last_refresh')::timestamptz IS NOT NULL AS last_refresh_is_timestamptz,
       jsonb_typeof(agentcache.health()->'map_memory'->'used') AS used_type,
       (agentcache.health()->'map_memory'->>'used')::bigint > 0 AS used_positive,
       (agentcache.health()->'map_memory'->>'limit')::bigint AS map_limit,
       (agentcache.health()->'map_memory'->>'used')::bigint
         <= (agentcache.health()->'map_memory'->>'limit')::bigint AS used_within_limit;
SELECT agentcache.health()->'maps'->'instances' ? 'last_error' AS has_last_error,
       agentcache.health()->'maps'->'instances'->'last_error' AS last_error,
       (agentcache.health()->'maps'->'instances'->>'last_refresh')::timestamptz IS NOT NULL AS last_refresh_ok;

-- ---------------------------------------------------------------- application roles
CREATE ROLE regress_map_app NOLOGIN;
\set VERBOSITY sqlstate
-- no USAGE on the schema: 42501
SET ROLE regress_map_app;
SELECT agentcache.lookup('instances', 'wa-100');
SELECT agentcache.resolve_instance('wa-100');
RESET ROLE;
\set VERBOSITY default
-- grant_app gives lookup/resolve_instance (no privilege on agentcache.maps
-- is needed: lookup reads shared memory only)
SELECT agentcache.grant_app('regress_map_app');
SET ROLE regress_map_app;
SELECT agentcache.lookup('instances', 'wa-100')->>'tenant' AS tenant,
       agentcache.resolve_instance('wa-100')->>'clinic' AS clinic,
       agentcache.resolve_instance('nope') IS NULL AS miss;
SELECT name, entries > 0 AS has_entries FROM agentcache.stats WHERE tier = 'map' ORDER BY name;
-- PUBLIC cannot execute define_map/drop_map, nor read or change the catalog
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.define_map('app', 'SELECT ''k''::text, ''1''::jsonb')$$),
  ($$SELECT agentcache.define_map('instances', 'SELECT ''k''::text, ''1''::jsonb')$$),
  ($$SELECT agentcache.drop_map('instances')$$),
  ($$SELECT agentcache.drop_map('no_such_map')$$),
  ($$SELECT agentcache.refresh_map('instances')$$),
  ($$SELECT count(*) FROM agentcache.maps$$),
  ($$DELETE FROM agentcache.maps$$)
) v(q);
RESET ROLE;
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace
   AND p.proname IN ('define_map', 'lookup', 'resolve_instance', 'refresh_map', 'drop_map', 'refresh_trigger')
 ORDER BY p.proname;
SELECT has_table_privilege('public', 'agentcache.maps', 'SELECT') AS public_select,
       has_table_privilege('regress_map_app', 'agentcache.maps', 'SELECT') AS app_select;
SELECT name FROM agentcache.maps ORDER BY name;

-- ---------------------------------------------------------------- cleanup
SELECT agentcache.drop_map(name) AS dropped FROM agentcache.maps ORDER BY name;
SELECT count(*) AS maps_left FROM agentcache.maps;
SELECT count(*) AS map_rows FROM agentcache.stats() WHERE tier = 'map';
DROP TABLE integrations, clinics, key_src, big_src, priv_src, secret_src, public.sp_src;
DROP SCHEMA regress_map_sp CASCADE;
DROP OWNED BY regress_map_owner, regress_map_member, regress_map_other, regress_map_app;
DROP ROLE regress_map_member, regress_map_owner, regress_map_other, regress_map_app;
