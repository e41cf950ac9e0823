--
-- ttl: the TTL cache (agentcache.entries, agentcache.namespaces): put, get,
-- get_stale, fetch, invalidate, invalidate_tag, clear, clear_all,
-- configure_namespace, invalidate_trigger, their SQLSTATEs and error order,
-- READ ONLY, privileges, and the 'ttl' rows of stats(). Timestamps are only
-- ever compared, never printed.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';


-- The keys a namespace holds, in order ('' when none).
CREATE FUNCTION ttl_keys(ns text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(key, ',' ORDER BY key), '') FROM agentcache.entries WHERE namespace = ns
$$;

-- A query with a side effect: every run leaves a row in ttl_calls.
CREATE TABLE ttl_calls (id serial PRIMARY KEY, label text);
CREATE FUNCTION ttl_compute(label text, v int) RETURNS int LANGUAGE sql VOLATILE AS $$
  INSERT INTO ttl_calls (label) VALUES (label) RETURNING v
$$;
CREATE FUNCTION ttl_fail(label text) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  INSERT INTO ttl_calls (label) VALUES (label);
  RAISE EXCEPTION 'source is down' USING ERRCODE = '08006';
END
$$;
CREATE FUNCTION ttl_runs(l text) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM ttl_calls WHERE label = l
$$;

-- stats() deltas: ttl_mark() records the counters, ttl_delta(ns) shows the
-- change since.
CREATE TABLE ttl_base AS SELECT * FROM agentcache.stats() WHERE false;
CREATE FUNCTION ttl_mark() RETURNS void LANGUAGE sql AS $$
  DELETE FROM ttl_base;
  INSERT INTO ttl_base SELECT * FROM agentcache.stats() WHERE tier = 'ttl';
$$;
CREATE FUNCTION ttl_delta(ns text, OUT hits bigint, OUT misses bigint, OUT stale_hits bigint,
                          OUT evictions bigint, OUT invalidations bigint) LANGUAGE sql AS $$
  SELECT s.hits - coalesce(b.hits, 0), s.misses - coalesce(b.misses, 0),
         s.stale_hits - coalesce(b.stale_hits, 0), s.evictions - coalesce(b.evictions, 0),
         s.invalidations - coalesce(b.invalidations, 0)
    FROM agentcache.stats() s LEFT JOIN ttl_base b ON b.name = s.name
   WHERE s.tier = 'ttl' AND s.name = ns
$$;

-- ---------------------------------------------------------------- the shape
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace
   AND p.proname IN ('put', 'get', 'get_stale', 'fetch', 'invalidate', 'invalidate_tag', 'clear',
                     'clear_all', 'configure_namespace', 'invalidate_trigger')
 ORDER BY p.proname;
-- entries is UNLOGGED; namespaces is an ordinary table
SELECT relname, relpersistence FROM pg_class
 WHERE relnamespace = 'agentcache'::regnamespace AND relname IN ('entries', 'namespaces') ORDER BY relname;
SELECT table_name, column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'agentcache'
   AND (table_name = 'namespaces'
        OR (table_name = 'entries' AND column_name IN ('namespace', 'key', 'value', 'tags', 'expires_at')))
 ORDER BY table_name, ordinal_position;

-- ---------------------------------------------------------------- put / get round trip
-- jsonb values of every kind come back exactly
CREATE TABLE ttl_values (k text PRIMARY KEY, v jsonb NOT NULL);
INSERT INTO ttl_values VALUES
  ('object', '{"a": 1, "b": [true, null], "c": {"d": "e"}}'),
  ('array', '[1, "two", 3.5, null, [], {}]'),
  ('string', '"olá 😀 \"quoted\" \\ back"'),
  ('empty string', '""'),
  ('integer', '42'),
  ('negative', '-7'),
  ('numeric', '12345678901234567890.000000000001'),
  ('float', '1.5e-10'),
  ('true', 'true'),
  ('false', 'false'),
  ('json null', 'null'),
  ('empty object', '{}'),
  ('empty array', '[]'),
  ('big', jsonb_build_object('text', repeat('x', 200000)));
SELECT count(agentcache.put('ttl-rt', k, v)) AS puts FROM ttl_values;
SELECT k, agentcache.get('ttl-rt', k) = v AS same,
       jsonb_typeof(agentcache.get('ttl-rt', k)) AS type
  FROM ttl_values ORDER BY k;
-- a JSON null is a value (not a miss)
SELECT agentcache.get('ttl-rt', 'json null') IS NOT NULL AS json_null_is_a_value;
-- absent key, absent namespace
SELECT agentcache.get('ttl-rt', 'nope') IS NULL AS absent_key,
       agentcache.get('ttl-no-such-namespace', 'k') IS NULL AS absent_namespace;
-- keys are compared exactly (bytewise, case-sensitive)
SELECT agentcache.put('ttl-rt', 'Case', '"upper"');
SELECT agentcache.get('ttl-rt', 'case') IS NULL AS lower_absent, agentcache.get('ttl-rt', 'Case') AS upper;
-- the row in agentcache.entries
SELECT namespace, key, value, tags FROM agentcache.entries WHERE namespace = 'ttl-rt' AND key = 'integer';

-- upsert replaces the value, the tags and the expiry
SELECT agentcache.put('ttl-up', 'k', '{"v": 1}', '1 hour', ARRAY['old-tag']);
SELECT expires_at AS up_exp1 FROM agentcache.entries WHERE namespace = 'ttl-up' AND key = 'k' \gset
SELECT agentcache.put('ttl-up', 'k', '{"v": 2}', '2 days', ARRAY['new-tag', 'other']);
SELECT value, tags,
       expires_at > clock_timestamp() + interval '47 hours' AS about_two_days,
       expires_at > :'up_exp1'::timestamptz AS expiry_replaced
  FROM agentcache.entries WHERE namespace = 'ttl-up';
SELECT count(*) AS rows_for_key FROM agentcache.entries WHERE namespace = 'ttl-up' AND key = 'k';
-- the old tag no longer matches it
SELECT agentcache.invalidate_tag('old-tag') AS old_tag_matches, agentcache.get('ttl-up', 'k') AS still_there;
-- tags NULL is allowed: no tags (the previous tags are replaced too)
SELECT agentcache.put('ttl-up', 'k', '3', NULL, NULL);
SELECT value, tags FROM agentcache.entries WHERE namespace = 'ttl-up';
SELECT agentcache.invalidate_tag('new-tag') AS new_tag_matches, agentcache.get('ttl-up', 'k') AS still_there;

-- ---------------------------------------------------------------- namespaces and default_ttl
-- a namespace is created by its first put, with default_ttl = the GUC at that moment
SELECT namespace, default_ttl, max_entries FROM agentcache.namespaces WHERE namespace IN ('ttl-rt', 'ttl-up') ORDER BY 1;
SHOW agentcache.default_ttl;
SET agentcache.default_ttl = '2s';
SELECT agentcache.put('ttl-guc', 'k1', '1');
SELECT default_ttl, default_ttl = interval '2 seconds' AS two_seconds, max_entries
  FROM agentcache.namespaces WHERE namespace = 'ttl-guc';
-- ttl NULL: the namespace's default_ttl
SELECT expires_at > clock_timestamp() + interval '1 second' AND expires_at <= clock_timestamp() + interval '2 seconds'
       AS expires_in_2s
  FROM agentcache.entries WHERE namespace = 'ttl-guc' AND key = 'k1';
-- copied, not followed: a later change of the GUC leaves the namespace alone
SET agentcache.default_ttl = '1h';
SELECT agentcache.put('ttl-guc', 'k2', '2');
SELECT default_ttl FROM agentcache.namespaces WHERE namespace = 'ttl-guc';
SELECT expires_at <= clock_timestamp() + interval '2 seconds' AS still_2s
  FROM agentcache.entries WHERE namespace = 'ttl-guc' AND key = 'k2';
-- a new namespace takes the GUC's new value
SELECT agentcache.put('ttl-guc-2', 'k', '1');
SELECT default_ttl FROM agentcache.namespaces WHERE namespace = 'ttl-guc-2';
RESET agentcache.default_ttl;
-- an explicit ttl wins over the default
SELECT agentcache.put('ttl-guc', 'k3', '3', '3 days');
SELECT expires_at > clock_timestamp() + interval '71 hours' AS explicit_ttl
  FROM agentcache.entries WHERE namespace = 'ttl-guc' AND key = 'k3';

-- configure_namespace: NULL default_ttl means no expiry
SELECT agentcache.configure_namespace('ttl-forever', NULL);
SELECT namespace, default_ttl IS NULL AS no_default_ttl, max_entries FROM agentcache.namespaces WHERE namespace = 'ttl-forever';
SELECT agentcache.put('ttl-forever', 'k', '"kept"');
SELECT expires_at IS NULL AS no_expiry FROM agentcache.entries WHERE namespace = 'ttl-forever';
-- an explicit ttl still expires
SELECT agentcache.put('ttl-forever', 'k2', '"timed"', '1 hour');
SELECT key, expires_at IS NULL AS no_expiry FROM agentcache.entries WHERE namespace = 'ttl-forever' ORDER BY key;
-- configure_namespace updates an existing namespace (later puts use it)
SELECT agentcache.configure_namespace('ttl-guc', '10 minutes');
SELECT default_ttl FROM agentcache.namespaces WHERE namespace = 'ttl-guc';
SELECT agentcache.put('ttl-guc', 'k4', '4');
SELECT expires_at > clock_timestamp() + interval '9 minutes' AND expires_at <= clock_timestamp() + interval '10 minutes'
       AS new_default
  FROM agentcache.entries WHERE namespace = 'ttl-guc' AND key = 'k4';
-- and back to no expiry
SELECT agentcache.configure_namespace('ttl-guc', NULL);
SELECT agentcache.put('ttl-guc', 'k5', '5');
SELECT expires_at IS NULL AS no_expiry FROM agentcache.entries WHERE namespace = 'ttl-guc' AND key = 'k5';
-- backends cache namespace settings; every committed change is seen by the next
-- put, whichever way it was made (a direct UPDATE by the owner too) ...
UPDATE agentcache.namespaces SET default_ttl = '20 minutes' WHERE namespace = 'ttl-guc';
SELECT agentcache.put('ttl-guc', 'k6', '6');
SELECT expires_at > clock_timestamp() + interval '19 minutes' AND expires_at <= clock_timestamp() + interval '20 minutes'
       AS direct_update_seen
  FROM agentcache.entries WHERE namespace = 'ttl-guc' AND key = 'k6';
-- ... a rolled-back change never is, and the transaction making it sees it at once
BEGIN;
SELECT agentcache.configure_namespace('ttl-guc', '30 minutes');
SELECT agentcache.put('ttl-guc', 'k7', '7');
SELECT expires_at > clock_timestamp() + interval '29 minutes' AS own_change_seen
  FROM agentcache.entries WHERE namespace = 'ttl-guc' AND key = 'k7';
ROLLBACK;
SELECT agentcache.put('ttl-guc', 'k7', '7');
SELECT expires_at <= clock_timestamp() + interval '20 minutes' AS rolled_back_change_unseen
  FROM agentcache.entries WHERE namespace = 'ttl-guc' AND key = 'k7';
-- a namespace deleted from the table is created again, with the defaults, by the next put
DELETE FROM agentcache.namespaces WHERE namespace = 'ttl-guc';
SELECT agentcache.put('ttl-guc', 'k8', '8');
SELECT default_ttl FROM agentcache.namespaces WHERE namespace = 'ttl-guc';
-- changing settings cannot be PREPAREd (0A000): COMMIT PREPARED would publish
-- the change behind the caches' back; the change is rolled back
BEGIN;
SELECT agentcache.configure_namespace('ttl-guc', '40 minutes');
PREPARE TRANSACTION 'agentcache_ns';
SELECT default_ttl FROM agentcache.namespaces WHERE namespace = 'ttl-guc';
SELECT agentcache.configure_namespace('ttl-guc', NULL);

-- one transaction may put any number of keys: put holds no lock past its call
-- (10,000 advisory locks would overflow the default lock table)
BEGIN;
SELECT count(agentcache.put('ttl-bulk', 'k' || g, to_jsonb(g))) AS bulk_puts FROM generate_series(1, 10000) g;
SELECT count(*) AS key_locks_held FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objsubid = 44035;  -- 0xAC03, the key lock space
COMMIT;
SELECT count(*) AS bulk_entries, agentcache.get('ttl-bulk', 'k10000') AS last FROM agentcache.entries WHERE namespace = 'ttl-bulk';
SELECT agentcache.clear('ttl-bulk') AS bulk_cleared;

-- ---------------------------------------------------------------- expiry (one pause serves every test below)
SELECT agentcache.configure_namespace('ttl-max', NULL, 4);
BEGIN;
SELECT count(agentcache.put('ttl-exp', k, to_jsonb('old ' || k), '2 seconds', ARRAY['exp-tag']))
  FROM unnest(ARRAY['get', 'stale', 'fetch', 'se', 'se-short', 'inv', 'tagged-1', 'tagged-2']) k;
SELECT agentcache.put('ttl-stats', 'expired', '"old"', '2 seconds');
SELECT agentcache.put('ttl-max', 'expired', '"old"', '2 seconds');
SELECT agentcache.put('ttl-exp', 'long', '"long"', '1 hour', ARRAY['exp-tag']);
SELECT agentcache.get('ttl-exp', 'get') AS fresh_in_transaction;
SELECT pg_sleep(2.1);
-- expiry is judged by the clock at the call: the entry expired inside this transaction
SELECT agentcache.get('ttl-exp', 'get') IS NULL AS expired_mid_transaction,
       agentcache.get('ttl-exp', 'long') AS long_lived;
COMMIT;
-- get never returns an expired value; the row is still there (kept for get_stale)
SELECT agentcache.get('ttl-exp', 'get') IS NULL AS get_expired,
       (SELECT count(*) FROM agentcache.entries WHERE namespace = 'ttl-exp' AND key = 'get') AS row_kept;
-- get_stale: within max_stale the value, beyond it NULL; a fresh value always
SELECT agentcache.get_stale('ttl-exp', 'stale', '1 hour') AS within_max_stale,
       agentcache.get_stale('ttl-exp', 'stale', '1 millisecond') IS NULL AS beyond_max_stale,
       agentcache.get_stale('ttl-exp', 'stale', '0') IS NULL AS max_stale_zero,
       agentcache.get_stale('ttl-exp', 'long', '0') AS fresh,
       agentcache.get_stale('ttl-exp', 'absent', '1 hour') IS NULL AS absent;

-- ---------------------------------------------------------------- fetch
-- miss: runs the query once, stores and returns its value
SELECT agentcache.fetch('ttl-fetch', 'k', $$SELECT ttl_compute('k', 7)$$) AS miss;
SELECT ttl_runs('k') AS runs, agentcache.get('ttl-fetch', 'k') AS stored;
-- hit: the cached value, the query does not run
SELECT agentcache.fetch('ttl-fetch', 'k', $$SELECT ttl_compute('k', 8)$$) AS hit1,
       agentcache.fetch('ttl-fetch', 'k', $$SELECT ttl_compute('k', 9)$$) AS hit2;
SELECT ttl_runs('k') AS runs;
-- a value put by put() is a hit too
SELECT agentcache.put('ttl-fetch', 'p', '"put"');
SELECT agentcache.fetch('ttl-fetch', 'p', $$SELECT ttl_compute('p', 1)$$) AS hit_of_put, ttl_runs('p') AS runs;
-- ttl NULL: the namespace default (created with the GUC: 5 minutes); ttl given: that
SELECT agentcache.fetch('ttl-fetch', 'd', $$SELECT 1$$) AS d,
       agentcache.fetch('ttl-fetch', 't', $$SELECT 1$$, '2 hours') AS t;
SELECT key, expires_at > clock_timestamp() + interval '4 minutes' AND expires_at <= clock_timestamp() + interval '5 minutes' AS five_min,
       expires_at > clock_timestamp() + interval '119 minutes' AS two_hours
  FROM agentcache.entries WHERE namespace = 'ttl-fetch' AND key IN ('d', 't') ORDER BY key;
-- an expired value is a miss: the query runs again and the new value is stored
SELECT agentcache.fetch('ttl-exp', 'fetch', $$SELECT ttl_compute('exp', 5)$$) AS refetched, ttl_runs('exp') AS runs;
SELECT agentcache.get('ttl-exp', 'fetch') AS stored,
       (SELECT expires_at > clock_timestamp() FROM agentcache.entries WHERE namespace = 'ttl-exp' AND key = 'fetch') AS fresh_again;
-- the single column goes through to_jsonb: text a JSON string, numbers numbers,
-- jsonb as is, json as jsonb, rows objects, arrays arrays
CREATE TABLE ttl_row (id int, name text, at date);
INSERT INTO ttl_row VALUES (1, 'uno', '2026-01-02');
SELECT k, agentcache.fetch('ttl-conv', k, q) AS fetched, agentcache.get('ttl-conv', k) AS stored
  FROM (VALUES ('text', $$SELECT 'abc'::text$$),
               ('varchar', $$SELECT 'a"b'::varchar$$),
               ('int', $$SELECT 42$$),
               ('bigint', $$SELECT 9007199254740993::bigint$$),
               ('numeric', $$SELECT 1.50::numeric$$),
               ('float', $$SELECT 0.25::float8$$),
               ('bool', $$SELECT false$$),
               ('jsonb', $$SELECT '{"a": [1, {"b": null}]}'::jsonb$$),
               ('jsonb string', $$SELECT '"x"'::jsonb$$),
               ('jsonb null', $$SELECT 'null'::jsonb$$),
               ('json', $$SELECT '{"b": 2, "a": 1}'::json$$),
               ('text that looks like json', $$SELECT '{"a": 1}'::text$$),
               ('date', $$SELECT '2026-01-02'::date$$),
               ('array', $$SELECT ARRAY[1, 2, NULL]$$),
               ('record', $$SELECT ROW(1, 'a')$$),
               ('table row', $$SELECT r FROM ttl_row r$$)) v(k, q)
 ORDER BY k;
-- a single NULL value: NULL, nothing stored
SELECT agentcache.fetch('ttl-conv', 'sql null', $$SELECT NULL::int$$) IS NULL AS sql_null,
       (SELECT count(*) FROM agentcache.entries WHERE namespace = 'ttl-conv' AND key = 'sql null') AS stored;
-- zero rows: NULL, not cached (the query runs again next time)
SELECT agentcache.fetch('ttl-fetch', 'zero', $$SELECT v FROM (SELECT ttl_compute('zero', 1) AS v) s WHERE v < 0$$) IS NULL AS zero_rows_1,
       agentcache.fetch('ttl-fetch', 'zero', $$SELECT v FROM (SELECT ttl_compute('zero', 1) AS v) s WHERE v < 0$$) IS NULL AS zero_rows_2;
SELECT ttl_runs('zero') AS runs,
       (SELECT count(*) FROM agentcache.entries WHERE namespace = 'ttl-fetch' AND key = 'zero') AS stored;
-- bad queries: more than one row 21000, not one column, syntax; nothing stored
\set VERBOSITY sqlstate
SELECT agentcache.fetch('ttl-fetch', 'bad', $$SELECT g FROM generate_series(1, 3) g$$);
SELECT agentcache.fetch('ttl-fetch', 'bad', $$SELECT g FROM generate_series(1, 2) g$$);
\set VERBOSITY default
SELECT q, sqlstate_of(format('SELECT agentcache.fetch(%L, %L, %L)', 'ttl-fetch', 'bad:' || q, q)) AS result
  FROM (VALUES ($$SELECT g FROM generate_series(1, 3) g$$),
               ($$SELECT 1, 2$$),
               ($$SELECT$$),
               ($$SELEC 1$$),
               ($$SELECT v FROM ttl_no_such_table$$)) v(q);
SELECT count(*) AS stored FROM agentcache.entries WHERE namespace = 'ttl-fetch' AND key LIKE 'bad%';
-- ttl <= 0: 22023, even when the key is cached
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.fetch('ttl-fetch', 'k', 'SELECT 1', '0')$$),
  ($$SELECT agentcache.fetch('ttl-fetch', 'new', 'SELECT 1', '-1 second')$$),
  ($$SELECT agentcache.fetch('ttl-fetch', 'new', 'SELECT 1', '0', '1 hour')$$)
) v(q);
SELECT count(*) AS stored FROM agentcache.entries WHERE namespace = 'ttl-fetch' AND key = 'new';
-- a failing query without stale_if_error: the error propagates
SELECT agentcache.fetch('ttl-fetch', 'fail', $$SELECT 1/0$$);

-- stale_if_error: a recently expired value is served with a WARNING (SQLSTATE
-- 01000) and not stored again
SELECT expires_at AS se_exp FROM agentcache.entries WHERE namespace = 'ttl-exp' AND key = 'se' \gset
SELECT agentcache.fetch('ttl-exp', 'se', $$SELECT ttl_fail('se')$$, NULL, '1 hour') AS served_stale;
\set VERBOSITY sqlstate
SELECT agentcache.fetch('ttl-exp', 'se', $$SELECT ttl_fail('se')$$, NULL, '1 hour') AS served_stale_again;
\set VERBOSITY default
-- not stored again: get stays NULL, the row is unchanged; the failed query's
-- own writes were rolled back
SELECT agentcache.get('ttl-exp', 'se') IS NULL AS get_still_null,
       (SELECT expires_at = :'se_exp'::timestamptz AND value = '"old se"'
          FROM agentcache.entries WHERE namespace = 'ttl-exp' AND key = 'se') AS row_unchanged,
       ttl_runs('se') AS failed_runs_left_nothing;
-- the transaction goes on after the WARNING
BEGIN;
SELECT agentcache.fetch('ttl-exp', 'se', $$SELECT 1/0$$, NULL, '1 day') AS in_transaction;
SELECT agentcache.put('ttl-exp', 'after-warning', '1');
COMMIT;
SELECT agentcache.get('ttl-exp', 'after-warning') AS committed;
-- expired longer ago than stale_if_error: the error propagates
SELECT agentcache.fetch('ttl-exp', 'se-short', $$SELECT ttl_fail('se-short')$$, NULL, '1 millisecond');
SELECT agentcache.fetch('ttl-exp', 'se-short', $$SELECT ttl_fail('se-short')$$, NULL, '0');
-- no value at all: the error propagates
SELECT agentcache.fetch('ttl-exp', 'se-none', $$SELECT ttl_fail('se-none')$$, NULL, '1 hour');
-- stale_if_error with a working query: an ordinary miss, stored
SELECT agentcache.fetch('ttl-exp', 'se-short', $$SELECT 'new'::text$$, NULL, '1 hour') AS fresh_value,
       agentcache.get('ttl-exp', 'se-short') AS stored;
-- ... and one returning no row: NULL, nothing stored
SELECT agentcache.fetch('ttl-exp', 'se-zero', $$SELECT 1 WHERE false$$, NULL, '1 hour') IS NULL AS zero_rows_null,
       NOT EXISTS (SELECT FROM agentcache.entries WHERE namespace = 'ttl-exp' AND key = 'se-zero') AS not_stored;

-- the query runs with the caller's search_path
CREATE SCHEMA regress_ttl_a;
CREATE SCHEMA regress_ttl_b;
CREATE TABLE regress_ttl_a.src (v text);
CREATE TABLE regress_ttl_b.src (v text);
INSERT INTO regress_ttl_a.src VALUES ('from a');
INSERT INTO regress_ttl_b.src VALUES ('from b');
SET search_path = regress_ttl_a, public;
SELECT agentcache.fetch('ttl-sp', 'a', 'SELECT v FROM src') AS in_a;
SET search_path = regress_ttl_b, public;
SELECT agentcache.fetch('ttl-sp', 'b', 'SELECT v FROM src') AS in_b;
RESET search_path;
\set VERBOSITY sqlstate
SELECT agentcache.fetch('ttl-sp', 'c', 'SELECT v FROM src');
\set VERBOSITY default

-- ---------------------------------------------------------------- invalidate, invalidate_tag, clear
SELECT agentcache.put('ttl-inv', 'a', '1', NULL, ARRAY['t1', 'shared']);
SELECT agentcache.put('ttl-inv', 'b', '2', NULL, ARRAY['t2', 'shared']);
SELECT agentcache.put('ttl-inv-2', 'a', '3', NULL, ARRAY['shared']);
SELECT agentcache.put('ttl-inv-2', 'c', '4', NULL, ARRAY['t1']);
-- invalidate: true when there was an entry (expired or not), false otherwise
SELECT agentcache.invalidate('ttl-inv', 'a') AS removed,
       agentcache.invalidate('ttl-inv', 'a') AS again,
       agentcache.invalidate('ttl-inv', 'never') AS never,
       agentcache.invalidate('ttl-exp', 'inv') AS expired_entry;
SELECT ttl_keys('ttl-inv') AS inv, ttl_keys('ttl-inv-2') AS inv2;
-- invalidate_tag: across namespaces; counts expired entries too
SELECT agentcache.invalidate_tag('shared') AS shared, agentcache.invalidate_tag('shared') AS again,
       agentcache.invalidate_tag('no-such-tag') AS none;
SELECT ttl_keys('ttl-inv') AS inv, ttl_keys('ttl-inv-2') AS inv2;
SELECT count(*) AS exp_tagged, count(*) FILTER (WHERE expires_at < clock_timestamp()) AS expired
  FROM agentcache.entries WHERE tags @> ARRAY['exp-tag'] \gset
SELECT :exp_tagged AS exp_tagged, :expired AS of_them_expired;
SELECT agentcache.invalidate_tag('exp-tag') = :'exp_tagged' AS counts_expired_too;
-- tags match whole elements only
SELECT agentcache.put('ttl-inv', 'p', '1', NULL, ARRAY['tenant:1']);
SELECT agentcache.invalidate_tag('tenant:') AS prefix, agentcache.invalidate_tag('tenant:10') AS longer,
       agentcache.invalidate_tag('TENANT:1') AS other_case, agentcache.invalidate_tag('tenant:1') AS exact;
-- clear: a namespace's entries (expired included), only that namespace
SELECT agentcache.put('ttl-clear', k, '1') FROM unnest(ARRAY['a', 'b', 'c']) k;
SELECT agentcache.put('ttl-clear-other', 'a', '1');
SELECT agentcache.put('ttl-clear', 'old', '1', '1 hour');
UPDATE agentcache.entries SET expires_at = clock_timestamp() - interval '1 minute'
 WHERE namespace = 'ttl-clear' AND key = 'old';
SELECT agentcache.get('ttl-clear', 'old') IS NULL AS old_is_expired;
SELECT agentcache.clear('ttl-clear') AS cleared, agentcache.clear('ttl-clear') AS again,
       agentcache.clear('ttl-never-used') AS unknown;
SELECT ttl_keys('ttl-clear') AS clear, ttl_keys('ttl-clear-other') AS other;
-- the namespace itself (its settings) stays
SELECT count(*) AS namespace_kept FROM agentcache.namespaces WHERE namespace = 'ttl-clear';

-- invalidation is transactional: the transaction sees it at once, ROLLBACK undoes it
SELECT agentcache.put('ttl-tx', k, to_jsonb(k), NULL, ARRAY['tx-tag']) FROM unnest(ARRAY['a', 'b', 'c']) k;
BEGIN;
SELECT agentcache.invalidate('ttl-tx', 'a') AS inv;
SELECT agentcache.get('ttl-tx', 'a') IS NULL AS own_get_sees_it,
       agentcache.fetch('ttl-tx', 'a', $$SELECT ttl_compute('tx', 1)$$) AS own_fetch_misses;
SELECT agentcache.invalidate_tag('tx-tag') AS tag_inv;
SELECT agentcache.clear('ttl-tx') AS cleared;
SELECT ttl_keys('ttl-tx') AS inside;
ROLLBACK;
SELECT agentcache.get('ttl-tx', 'a') AS a_back, agentcache.get('ttl-tx', 'b') AS b_back,
       ttl_keys('ttl-tx') AS after_rollback, ttl_runs('tx') AS query_run_rolled_back;
-- and a savepoint
BEGIN;
SAVEPOINT s;
SELECT agentcache.invalidate_tag('tx-tag') AS tag_inv;
ROLLBACK TO SAVEPOINT s;
SELECT ttl_keys('ttl-tx') AS after_rollback_to_savepoint;
SELECT agentcache.invalidate('ttl-tx', 'c') AS inv;
COMMIT;
SELECT ttl_keys('ttl-tx') AS after_commit;

-- ---------------------------------------------------------------- max_entries
-- 'ttl-max' (limit 4, no default expiry) holds one expired entry
SELECT agentcache.put('ttl-max', 'forever-1', '1');
SELECT agentcache.put('ttl-max', 'h1', '1', '1 hour');
SELECT agentcache.put('ttl-max', 'm10', '1', '10 minutes');
SELECT ttl_keys('ttl-max') AS full;
-- over the limit: the expired entry goes first
SELECT agentcache.put('ttl-max', 'm30', '1', '30 minutes');
SELECT ttl_keys('ttl-max') AS evicted_expired;
-- then the one nearest to expiry
SELECT agentcache.put('ttl-max', 'h2', '1', '2 hours');
SELECT ttl_keys('ttl-max') AS evicted_m10;
-- the entry just written is never the victim, even when it expires first
SELECT agentcache.put('ttl-max', 's1', '1', '1 second');
SELECT ttl_keys('ttl-max') AS evicted_m30_kept_s1;
-- an upsert of a key already there evicts nothing
SELECT agentcache.put('ttl-max', 'h1', '2', '3 hours');
SELECT ttl_keys('ttl-max') AS upsert_no_eviction;
-- entries without expiry go last: only when no other is left
SELECT agentcache.put('ttl-max', 'forever-2', '1');
SELECT agentcache.put('ttl-max', 'forever-3', '1');
SELECT agentcache.put('ttl-max', 'forever-4', '1');
SELECT ttl_keys('ttl-max') AS only_forever_left;
SELECT agentcache.put('ttl-max', 'h5', '1', '5 hours');
SELECT count(*) AS entries, count(*) FILTER (WHERE key = 'h5') AS new_kept,
       count(*) FILTER (WHERE expires_at IS NULL) AS forever_left
  FROM agentcache.entries WHERE namespace = 'ttl-max';
-- a single writer never exceeds the limit
DO $$
DECLARE worst bigint := 0; n bigint;
BEGIN
  FOR i IN 1 .. 30 LOOP
    PERFORM agentcache.put('ttl-max', 'loop-' || i, to_jsonb(i),
                           CASE WHEN i % 3 = 0 THEN NULL ELSE make_interval(mins => 100 - i) END);
    SELECT count(*) INTO n FROM agentcache.entries WHERE namespace = 'ttl-max';
    worst := greatest(worst, n);
    IF NOT EXISTS (SELECT 1 FROM agentcache.entries WHERE namespace = 'ttl-max' AND key = 'loop-' || i) THEN
      RAISE EXCEPTION 'loop-% was evicted by its own put', i;
    END IF;
  END LOOP;
  RAISE NOTICE 'most entries seen: %', worst;
END
$$;
SELECT count(*) AS entries_after_loop FROM agentcache.entries WHERE namespace = 'ttl-max';
-- lowering the limit evicts at once (nearest to expiry first, no-expiry entries last)
SELECT agentcache.clear('ttl-max') AS emptied;
SELECT agentcache.put('ttl-max', 'forever', '1');
SELECT agentcache.put('ttl-max', 'h2', '1', '2 hours');
SELECT agentcache.put('ttl-max', 'm1', '1', '1 minute');
SELECT agentcache.put('ttl-max', 'h1', '1', '1 hour');
SELECT ttl_keys('ttl-max') AS before_lowering;
SELECT agentcache.configure_namespace('ttl-max', NULL, 2);
SELECT ttl_keys('ttl-max') AS after_lowering;
SELECT max_entries FROM agentcache.namespaces WHERE namespace = 'ttl-max';
-- max_entries NULL: no limit
SELECT agentcache.configure_namespace('ttl-max', NULL, NULL);
SELECT count(agentcache.put('ttl-max', 'free-' || g, '1')) FROM generate_series(1, 5) g;
SELECT count(*) AS unlimited FROM agentcache.entries WHERE namespace = 'ttl-max';
-- fetch stores through the same limit
SELECT agentcache.configure_namespace('ttl-max-f', '1 hour', 1);
SELECT agentcache.fetch('ttl-max-f', 'x', 'SELECT 1') AS x, agentcache.fetch('ttl-max-f', 'y', 'SELECT 2') AS y;
SELECT ttl_keys('ttl-max-f') AS fetch_limited;
-- configure_namespace: default_ttl <= 0 or max_entries <= 0: 22023, nothing changed
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.configure_namespace('ttl-max', '0')$$),
  ($$SELECT agentcache.configure_namespace('ttl-max', '-5 minutes')$$),
  ($$SELECT agentcache.configure_namespace('ttl-max', '1 hour', 0)$$),
  ($$SELECT agentcache.configure_namespace('ttl-max', '1 hour', -1)$$),
  ($$SELECT agentcache.configure_namespace('ttl-bad-new', NULL, 0)$$)
) v(q);
SELECT namespace, default_ttl, max_entries FROM agentcache.namespaces WHERE namespace IN ('ttl-max', 'ttl-bad-new');

-- ---------------------------------------------------------------- argument errors and their order
-- NULL required arguments: 22004; NULL ttl / tags / stale_if_error / max_entries / default_ttl are allowed
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.put(NULL, 'k', '1')$$),
  ($$SELECT agentcache.put('ttl-err', NULL, '1')$$),
  ($$SELECT agentcache.put('ttl-err', 'k', NULL)$$),
  ($$SELECT agentcache.get(NULL, 'k')$$),
  ($$SELECT agentcache.get('ttl-err', NULL)$$),
  ($$SELECT agentcache.get_stale(NULL, 'k', '1 hour')$$),
  ($$SELECT agentcache.get_stale('ttl-err', NULL, '1 hour')$$),
  ($$SELECT agentcache.get_stale('ttl-err', 'k', NULL)$$),
  ($$SELECT agentcache.fetch(NULL, 'k', 'SELECT 1')$$),
  ($$SELECT agentcache.fetch('ttl-err', NULL, 'SELECT 1')$$),
  ($$SELECT agentcache.fetch('ttl-err', 'k', NULL)$$),
  ($$SELECT agentcache.invalidate(NULL, 'k')$$),
  ($$SELECT agentcache.invalidate('ttl-err', NULL)$$),
  ($$SELECT agentcache.invalidate_tag(NULL)$$),
  ($$SELECT agentcache.clear(NULL)$$),
  ($$SELECT agentcache.configure_namespace(NULL, '1 hour')$$)
) v(q);
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.put('ttl-err', 'k1', '1', NULL)$$),
  ($$SELECT agentcache.put('ttl-err', 'k2', '1', NULL, NULL)$$),
  ($$SELECT agentcache.fetch('ttl-err', 'k3', 'SELECT 3', NULL, NULL)$$),
  ($$SELECT agentcache.configure_namespace('ttl-err-2', NULL, NULL)$$)
) v(q);
-- ttl <= 0: 22023 (nothing stored)
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.put('ttl-err', 'z', '1', '0')$$),
  ($$SELECT agentcache.put('ttl-err', 'z', '1', '-1 second')$$),
  ($$SELECT agentcache.put('ttl-err', 'z', '1', '-1 day +23 hours')$$)
) v(q);
SELECT count(*) AS stored FROM agentcache.entries WHERE namespace = 'ttl-err' AND key = 'z';
-- namespace over 63 bytes, key over 1024 bytes: 54000 (bytes, not characters)
SELECT octet_length(repeat('é', 32)) AS ns_64_bytes, char_length(repeat('é', 32)) AS ns_32_chars;
SELECT q, left(sqlstate_of(q), 5) AS sqlstate FROM (VALUES
  ($$SELECT agentcache.put(repeat('n', 64), 'k', '1')$$),
  ($$SELECT agentcache.put(repeat('é', 32), 'k', '1')$$),
  ($$SELECT agentcache.put('ttl-err', repeat('k', 1025), '1')$$),
  ($$SELECT agentcache.put('ttl-err', repeat('é', 513), '1')$$),
  ($$SELECT agentcache.get(repeat('n', 64), 'k')$$),
  ($$SELECT agentcache.get('ttl-err', repeat('k', 1025))$$),
  ($$SELECT agentcache.get_stale(repeat('n', 64), 'k', '1 hour')$$),
  ($$SELECT agentcache.get_stale('ttl-err', repeat('k', 1025), '1 hour')$$),
  ($$SELECT agentcache.fetch(repeat('n', 64), 'k', 'SELECT 1')$$),
  ($$SELECT agentcache.fetch('ttl-err', repeat('k', 1025), 'SELECT 1')$$),
  ($$SELECT agentcache.invalidate(repeat('n', 64), 'k')$$),
  ($$SELECT agentcache.invalidate('ttl-err', repeat('k', 1025))$$),
  ($$SELECT agentcache.clear(repeat('n', 64))$$),
  ($$SELECT agentcache.configure_namespace(repeat('n', 64), NULL)$$)
) v(q);
-- exactly 63 and 1024 bytes are fine
SELECT agentcache.put(repeat('n', 63), repeat('k', 1024), '"edge"');
SELECT agentcache.get(repeat('n', 63), repeat('k', 1024)) AS edge;
SELECT agentcache.clear(repeat('n', 63)) AS cleared;
-- order: 22004 before 54000 before 22023
SELECT q, left(sqlstate_of(q), 5) AS sqlstate FROM (VALUES
  ($$SELECT agentcache.put(repeat('n', 64), 'k', NULL)$$),
  ($$SELECT agentcache.put(repeat('n', 64), NULL, '1', '0')$$),
  ($$SELECT agentcache.fetch(repeat('n', 64), repeat('k', 1025), NULL)$$),
  ($$SELECT agentcache.get_stale(repeat('n', 64), 'k', NULL)$$),
  ($$SELECT agentcache.put(repeat('n', 64), 'k', '1', '0')$$),
  ($$SELECT agentcache.fetch('ttl-err', repeat('k', 1025), 'SELECT 1', '0')$$),
  ($$SELECT agentcache.configure_namespace(repeat('n', 64), '0', 0)$$)
) v(q);
SELECT count(*) AS nothing_created FROM agentcache.namespaces WHERE octet_length(namespace) > 63;

-- ---------------------------------------------------------------- READ ONLY
SELECT agentcache.put('ttl-ro', 'k', '"cached"');
BEGIN TRANSACTION READ ONLY;
-- reads work
SELECT agentcache.get('ttl-ro', 'k') AS get, agentcache.get_stale('ttl-ro', 'k', '1 hour') AS get_stale,
       agentcache.fetch('ttl-ro', 'k', $$SELECT 'not run'::text$$) AS fetch_hit;
-- a fetch miss returns the value without storing it
SELECT agentcache.fetch('ttl-ro', 'miss', $$SELECT 'computed'::text$$) AS fetch_miss;
SELECT agentcache.get('ttl-ro', 'miss') IS NULL AS not_stored;
-- writes: 25006, after the argument errors (22004, then 54000/22023)
SELECT q, left(sqlstate_of(q), 5) AS sqlstate FROM (VALUES
  ($$SELECT agentcache.put('ttl-ro', 'k', '1')$$),
  ($$SELECT agentcache.put('ttl-ro-new', 'k', '1')$$),
  ($$SELECT agentcache.invalidate('ttl-ro', 'k')$$),
  ($$SELECT agentcache.invalidate_tag('x')$$),
  ($$SELECT agentcache.clear('ttl-ro')$$),
  ($$SELECT agentcache.clear_all()$$),
  ($$SELECT agentcache.configure_namespace('ttl-ro', '1 hour')$$),
  ($$SELECT agentcache.put('ttl-ro', 'k', NULL)$$),
  ($$SELECT agentcache.put(NULL, repeat('k', 1025), '1')$$),
  ($$SELECT agentcache.put(repeat('n', 64), 'k', '1')$$),
  ($$SELECT agentcache.put('ttl-ro', repeat('k', 1025), '1')$$),
  ($$SELECT agentcache.put('ttl-ro', 'k', '1', '0')$$),
  ($$SELECT agentcache.invalidate('ttl-ro', NULL)$$),
  ($$SELECT agentcache.invalidate(repeat('n', 64), 'k')$$),
  ($$SELECT agentcache.invalidate_tag(NULL)$$),
  ($$SELECT agentcache.clear(NULL)$$),
  ($$SELECT agentcache.clear(repeat('n', 64))$$),
  ($$SELECT agentcache.configure_namespace(NULL, '1 hour')$$),
  ($$SELECT agentcache.configure_namespace('ttl-ro', '0')$$),
  ($$SELECT agentcache.configure_namespace('ttl-ro', '1 hour', 0)$$)
) v(q);
COMMIT;
-- nothing was written
SELECT agentcache.get('ttl-ro', 'k') AS unchanged, agentcache.get('ttl-ro', 'miss') IS NULL AS miss_not_stored,
       (SELECT count(*) FROM agentcache.namespaces WHERE namespace = 'ttl-ro-new') AS no_new_namespace,
       (SELECT default_ttl FROM agentcache.namespaces WHERE namespace = 'ttl-ro') AS settings_unchanged;
-- the plain error, once, with default verbosity
BEGIN TRANSACTION READ ONLY;
SELECT agentcache.put('ttl-ro', 'k', '1');
ROLLBACK;

-- ---------------------------------------------------------------- invalidate_trigger
CREATE TABLE ttl_orders (id int PRIMARY KEY, tenant_id int, ref uuid, day date, note text);
CREATE TRIGGER ttl_orders_inv AFTER INSERT OR UPDATE OR DELETE ON ttl_orders
  FOR EACH ROW EXECUTE FUNCTION agentcache.invalidate_trigger('tenant:{tenant_id}', 'ref:{ref}', 'day:{day}',
                                                             'order:{tenant_id}:{id}', 'note:{note}');
-- one entry per tag that a row could produce, plus decoys
CREATE FUNCTION ttl_seed() RETURNS void LANGUAGE sql AS $$
  SELECT agentcache.clear('ttl-trg');
  SELECT agentcache.put('ttl-trg', k, '1', NULL, ARRAY[k])
    FROM unnest(ARRAY['tenant:1', 'tenant:2', 'tenant:3', 'order:1:1', 'order:2:1',
                      'ref:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'day:2026-01-02',
                      'note:', 'ref:', 'day:', 'tenant:', 'note:hello']) k;
  SELECT agentcache.put('ttl-trg-2', 'tenant:1', '1', NULL, ARRAY['tenant:1']);
$$;
CREATE FUNCTION ttl_trg_left() RETURNS text LANGUAGE sql AS $$
  SELECT ttl_keys('ttl-trg') || ' | ' || ttl_keys('ttl-trg-2')
$$;
SELECT ttl_seed();
-- INSERT: tags from NEW; NULL columns yield no tag (not 'ref:' or 'note:')
INSERT INTO ttl_orders (id, tenant_id) VALUES (1, 1);
SELECT ttl_trg_left() AS after_insert;
-- UPDATE moving a row between tenants: both tenants (OLD and NEW)
SELECT ttl_seed();
UPDATE ttl_orders SET tenant_id = 2 WHERE id = 1;
SELECT ttl_trg_left() AS after_move;
-- non-text columns: their text output (uuid, date, int)
SELECT ttl_seed();
UPDATE ttl_orders SET ref = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', day = '2026-01-02', tenant_id = 3 WHERE id = 1;
SELECT ttl_trg_left() AS after_uuid_date;
-- DELETE: tags from OLD
SELECT ttl_seed();
UPDATE ttl_orders SET note = 'hello', ref = NULL, day = NULL WHERE id = 1;
SELECT ttl_seed();
DELETE FROM ttl_orders WHERE id = 1;
SELECT ttl_trg_left() AS after_delete;
-- a rolled-back statement's invalidation is undone
SELECT ttl_seed();
INSERT INTO ttl_orders (id, tenant_id) VALUES (2, 2);
SELECT ttl_seed();
BEGIN;
UPDATE ttl_orders SET tenant_id = 1 WHERE id = 2;
SELECT ttl_trg_left() AS inside_transaction;
ROLLBACK;
SELECT ttl_trg_left() AS after_rollback;
BEGIN;
SAVEPOINT s;
DELETE FROM ttl_orders WHERE id = 2;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT ttl_trg_left() AS after_rollback_to_savepoint;
-- a statement that fails after the invalidation ran (a later AFTER trigger
-- raises) leaves everything in place
CREATE FUNCTION ttl_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.tenant_id = 99 THEN RAISE EXCEPTION 'tenant 99 refused'; END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER zz_ttl_orders_refuse AFTER UPDATE ON ttl_orders FOR EACH ROW EXECUTE FUNCTION ttl_refuse();
UPDATE ttl_orders SET tenant_id = 99 WHERE id = 2;
SELECT ttl_trg_left() AS after_failed_statement;
DROP TRIGGER zz_ttl_orders_refuse ON ttl_orders;
DROP FUNCTION ttl_refuse();
-- an unknown column: 42703 when the trigger fires (the row is not written)
CREATE TABLE ttl_bad (id int, tenant_id int);
CREATE TRIGGER ttl_bad_inv AFTER INSERT ON ttl_bad
  FOR EACH ROW EXECUTE FUNCTION agentcache.invalidate_trigger('tenant:{tenant_id}', 'x:{no_such_column}');
\set VERBOSITY sqlstate
INSERT INTO ttl_bad VALUES (1, 1);
\set VERBOSITY default
INSERT INTO ttl_bad VALUES (1, 1);
SELECT count(*) AS rows_written FROM ttl_bad;
SELECT ttl_trg_left() AS nothing_invalidated;
DROP TRIGGER ttl_bad_inv ON ttl_bad;
-- as a statement-level trigger: 39P01
CREATE TRIGGER ttl_bad_stmt AFTER INSERT ON ttl_bad
  FOR EACH STATEMENT EXECUTE FUNCTION agentcache.invalidate_trigger('tenant:{tenant_id}');
\set VERBOSITY sqlstate
INSERT INTO ttl_bad VALUES (1, 1);
\set VERBOSITY default
SELECT count(*) AS rows_written FROM ttl_bad;
DROP TRIGGER ttl_bad_stmt ON ttl_bad;
-- called directly: not a trigger
\set VERBOSITY sqlstate
SELECT agentcache.invalidate_trigger();
\set VERBOSITY default

-- ---------------------------------------------------------------- stats(): one 'ttl' row per namespace
SELECT ttl_mark();
SELECT agentcache.get('ttl-stats', 'k') IS NULL AS miss;
SELECT agentcache.put('ttl-stats', 'k', '1', NULL, ARRAY['st']);
SELECT agentcache.put('ttl-stats', 'k2', '2', NULL, ARRAY['st']);
SELECT agentcache.put('ttl-stats', 'k3', '3', NULL, ARRAY['st']);
SELECT agentcache.get('ttl-stats', 'k') AS hit, agentcache.get_stale('ttl-stats', 'k', '1 hour') AS fresh_hit,
       agentcache.fetch('ttl-stats', 'k', 'SELECT 0') AS fetch_hit;
SELECT * FROM ttl_delta('ttl-stats');
SELECT ttl_mark();
SELECT agentcache.fetch('ttl-stats', 'f', 'SELECT 5') AS fetch_miss,
       agentcache.get('ttl-stats', 'expired') IS NULL AS expired_is_miss,
       agentcache.get_stale('ttl-stats', 'expired', '1 hour') AS stale_hit;
SELECT * FROM ttl_delta('ttl-stats');
-- a value served through stale_if_error is a stale_hit
SELECT ttl_mark();
SELECT agentcache.fetch('ttl-stats', 'expired', 'SELECT 1/0', NULL, '1 hour') AS stale_if_error;
SELECT hits, stale_hits FROM ttl_delta('ttl-stats');
SELECT ttl_mark();
SELECT agentcache.invalidate('ttl-stats', 'f') AS inv, agentcache.invalidate('ttl-stats', 'f') AS inv_none,
       agentcache.invalidate_tag('st') AS tag_inv;
SELECT * FROM ttl_delta('ttl-stats');
SELECT ttl_mark();
SELECT count(agentcache.put('ttl-stats', 'e' || g, '1')) FROM generate_series(1, 4) g;
SELECT agentcache.configure_namespace('ttl-stats', '1 hour', 2);
SELECT agentcache.put('ttl-stats', 'e5', '1');
SELECT * FROM ttl_delta('ttl-stats');
-- exactly one row per namespace, for every namespace used here
SELECT count(*) AS duplicate_rows FROM (
  SELECT name FROM agentcache.stats() WHERE tier = 'ttl' GROUP BY name HAVING count(*) > 1) d;
SELECT namespace AS missing_from_stats FROM agentcache.namespaces
 WHERE namespace LIKE 'ttl-%' AND namespace NOT IN (SELECT name FROM agentcache.stats() WHERE tier = 'ttl')
 ORDER BY 1;
SELECT entries > 0 AS has_entries, bytes >= 0 AS bytes_ok, expirations >= 0 AS expirations_ok
  FROM agentcache.stats() WHERE tier = 'ttl' AND name = 'ttl-stats';
-- the view shows the same rows
SELECT count(*) > 0 AS view_has_ttl_rows FROM agentcache.stats WHERE tier = 'ttl' AND name = 'ttl-stats';

-- ---------------------------------------------------------------- privileges
CREATE ROLE regress_ttl_app NOLOGIN;
GRANT USAGE ON SCHEMA agentcache TO regress_ttl_app;
SELECT agentcache.put('ttl-priv', 'k', '"shared"');
-- only USAGE: 42501 from every function that touches the table
SET ROLE regress_ttl_app;
SELECT q, left(sqlstate_of(q), 5) AS sqlstate FROM (VALUES
  ($$SELECT agentcache.get('ttl-priv', 'k')$$),
  ($$SELECT agentcache.get_stale('ttl-priv', 'k', '1 hour')$$),
  ($$SELECT agentcache.put('ttl-priv', 'k2', '1')$$),
  ($$SELECT agentcache.put('ttl-priv-new', 'k', '1')$$),
  ($$SELECT agentcache.fetch('ttl-priv', 'k', 'SELECT 1')$$),
  ($$SELECT agentcache.invalidate('ttl-priv', 'k')$$),
  ($$SELECT agentcache.invalidate_tag('t')$$),
  ($$SELECT agentcache.clear('ttl-priv')$$),
  ($$SELECT agentcache.clear_all()$$),
  ($$SELECT agentcache.configure_namespace('ttl-priv', NULL)$$)
) v(q);
RESET ROLE;
SELECT ttl_keys('ttl-priv') AS untouched,
       (SELECT count(*) FROM agentcache.namespaces WHERE namespace = 'ttl-priv-new') AS no_namespace;
-- after grant_app it works (a first put creates the namespace, with the GUC's default)
SELECT agentcache.grant_app('regress_ttl_app');
CREATE TABLE ttl_secret (v text);
INSERT INTO ttl_secret VALUES ('secret');
SET ROLE regress_ttl_app;
SET agentcache.default_ttl = '7min';
SELECT agentcache.get('ttl-priv', 'k') AS get,
       agentcache.fetch('ttl-priv', 'who', 'SELECT current_user::text') AS fetch_runs_as_caller;
SELECT agentcache.put('ttl-priv-app', 'k', '"app"', NULL, ARRAY['app-tag']);
SELECT agentcache.put('ttl-priv-app', 'k2', '"app 2"', '1 hour', ARRAY['app-tag']);
SELECT agentcache.get('ttl-priv-app', 'k') AS app_put,
       agentcache.get_stale('ttl-priv-app', 'k', '1 hour') AS app_get_stale;
RESET agentcache.default_ttl;
-- the query runs with the caller's privileges
\set VERBOSITY sqlstate
SELECT agentcache.fetch('ttl-priv', 'secret', 'SELECT v FROM ttl_secret');
\set VERBOSITY default
SELECT agentcache.get('ttl-priv', 'secret') IS NULL AS nothing_cached;
-- admin functions and the namespaces table stay closed
SELECT q, left(sqlstate_of(q), 5) AS sqlstate FROM (VALUES
  ($$SELECT agentcache.clear_all()$$),
  ($$SELECT agentcache.configure_namespace('ttl-priv-app', NULL)$$),
  ($$INSERT INTO agentcache.namespaces VALUES ('ttl-sneaky', NULL, NULL)$$),
  ($$UPDATE agentcache.namespaces SET default_ttl = NULL WHERE namespace = 'ttl-priv-app'$$),
  ($$DELETE FROM agentcache.namespaces WHERE namespace = 'ttl-priv-app'$$)
) v(q);
SELECT agentcache.invalidate('ttl-priv-app', 'k') AS app_invalidate;
SELECT agentcache.invalidate_tag('app-tag') AS app_tag;
SELECT agentcache.clear('ttl-priv') AS app_clear;
RESET ROLE;
SELECT namespace, default_ttl, max_entries FROM agentcache.namespaces WHERE namespace IN ('ttl-priv-app', 'ttl-sneaky');
SELECT has_function_privilege('regress_ttl_app', 'agentcache.clear_all()', 'EXECUTE') AS clear_all,
       has_function_privilege('regress_ttl_app', 'agentcache.configure_namespace(text, interval, bigint)', 'EXECUTE') AS configure,
       has_table_privilege('regress_ttl_app', 'agentcache.namespaces', 'INSERT') AS ns_insert,
       has_table_privilege('regress_ttl_app', 'agentcache.namespaces', 'UPDATE') AS ns_update,
       has_table_privilege('regress_ttl_app', 'agentcache.namespaces', 'DELETE') AS ns_delete,
       has_function_privilege('public', 'agentcache.clear_all()', 'EXECUTE') AS public_clear_all;

-- ---------------------------------------------------------------- put's direct write
-- put writes the row itself (no SQL) while agentcache.entries is as installed;
-- the index entries it makes are checked by amcheck (every heap row indexed)
SELECT count(agentcache.put('ttl-direct', 'k' || g, to_jsonb(g), NULL, ARRAY['d' || (g % 3)])) FROM generate_series(1, 300) g;
SELECT count(agentcache.put('ttl-direct', 'k' || g, to_jsonb(-g))) FROM generate_series(1, 300, 2) g;  -- HOT or not
SELECT count(agentcache.put('ttl-direct', 'k' || g, '"re-tagged"', NULL, ARRAY['moved'])) FROM generate_series(2, 300, 4) g;
SELECT agentcache.invalidate_tag('d1') AS d1_gone, agentcache.invalidate_tag('moved') AS moved_gone;
SELECT count(*) AS direct_left, sum(value::text::int) FILTER (WHERE value::text ~ '^-?[0-9]+$') AS checksum
  FROM agentcache.entries WHERE namespace = 'ttl-direct';
CREATE EXTENSION amcheck;
SELECT 'no error' AS pkey_amcheck FROM (SELECT bt_index_parent_check('agentcache.entries_pkey', heapallindexed => true)) c;
-- an administrator's trigger on the table sends put through SQL, so it fires
CREATE TABLE ttl_audit (ns text, key text, value jsonb);
CREATE FUNCTION ttl_audit_fn() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO ttl_audit VALUES (NEW.namespace, NEW.key, NEW.value); RETURN NULL; END$$;
CREATE TRIGGER ttl_audit AFTER INSERT OR UPDATE ON agentcache.entries FOR EACH ROW EXECUTE FUNCTION ttl_audit_fn();
SELECT agentcache.put('ttl-direct', 'audited', '1'), agentcache.put('ttl-direct', 'audited', '2');
SELECT * FROM ttl_audit ORDER BY value;
DROP TRIGGER ttl_audit ON agentcache.entries;
SELECT agentcache.put('ttl-direct', 'audited', '3');
SELECT count(*) AS audited_after_drop, agentcache.get('ttl-direct', 'audited') AS value FROM ttl_audit;
SELECT 'no error' AS pkey_amcheck_again FROM (SELECT bt_index_parent_check('agentcache.entries_pkey', heapallindexed => true)) c;
DROP TABLE ttl_audit;
DROP FUNCTION ttl_audit_fn();
DROP EXTENSION amcheck;
SELECT agentcache.clear('ttl-direct') > 0 AS direct_cleared;

-- ---------------------------------------------------------------- clear_all (admin)
SELECT count(*) AS total FROM agentcache.entries \gset
SELECT agentcache.clear_all() = :total AS cleared_everything, :total > 0 AS there_was_something;
SELECT count(*) AS entries_left FROM agentcache.entries;
SELECT agentcache.clear_all() AS again;
-- namespaces and their settings stay
SELECT namespace, default_ttl, max_entries FROM agentcache.namespaces WHERE namespace IN ('ttl-forever', 'ttl-max') ORDER BY 1;

-- ---------------------------------------------------------------- clean up
DROP OWNED BY regress_ttl_app;
DROP ROLE regress_ttl_app;
DROP TABLE ttl_orders, ttl_bad, ttl_secret, ttl_row, ttl_values, ttl_calls, ttl_base;
DROP SCHEMA regress_ttl_a, regress_ttl_b CASCADE;
DROP FUNCTION ttl_seed(), ttl_trg_left(), ttl_keys(text), ttl_compute(text, int), ttl_fail(text), ttl_runs(text),
              ttl_mark(), ttl_delta(text);
