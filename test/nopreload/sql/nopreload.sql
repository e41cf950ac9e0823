--
-- nopreload: agentcache installed WITHOUT shared_preload_libraries.
-- CREATE EXTENSION works, table-backed functions work (reading the table),
-- functions that need shared memory raise 55000 with a hint, nothing crashes.
--
SET TimeZone = 'UTC';
SHOW shared_preload_libraries;

CREATE EXTENSION agentcache;
SELECT extname, extversion FROM pg_extension WHERE extname = 'agentcache';

-- health() reports it without raising
SELECT agentcache.health()->'preloaded' AS preloaded;
SELECT agentcache.health() ?& ARRAY['preloaded', 'worker', 'session_memory', 'map_memory'] AS has_keys,
       agentcache.health()->'worker' ?& ARRAY['pid', 'alive', 'last_sweep', 'last_refresh'] AS worker_keys,
       agentcache.health()->'worker'->'alive' AS worker_alive,
       agentcache.health()->'worker'->'pid' AS worker_pid,
       (agentcache.health()->'session_memory'->>'used') ~ '^[0-9]+$' AS used_is_integer,
       (agentcache.health()->'session_memory'->>'limit') ~ '^[0-9]+$' AS limit_is_integer;

-- the conversation functions work on the table
SELECT agentcache.add_turn('np-1', 'system', 'be brief') AS s1,
       agentcache.add_turn('np-1', 'user', 'olá 😀', '{"k": [1, null]}') AS s2,
       agentcache.add_turn('np-1', 'assistant', 'oi', 'null') AS s3;
SELECT e - 'at' AS turn FROM jsonb_array_elements(agentcache.get_context('np-1')) e;
SELECT agentcache.get_context('np-1') = (
         SELECT jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content,
                                             'at', to_jsonb(created_at))
                          || CASE WHEN meta IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('meta', meta) END
                          ORDER BY seq)
           FROM agentcache.turns WHERE session_id = 'np-1') AS equals_reference;
SELECT jsonb_path_query_array(agentcache.get_context('np-1', 2), '$[*].seq') AS newest_2,
       jsonb_path_query_array(agentcache.get_context('np-1', NULL, 7), '$[*].seq') AS max_chars_7,
       jsonb_path_query_array(agentcache.get_context('np-1', 100), '$[*].seq') AS max_100,
       agentcache.get_context('np-1', NULL, 1) AS too_small;
SET agentcache.context_turns = 1;
SELECT jsonb_path_query_array(agentcache.get_context('np-1'), '$[*].seq') AS context_turns_1;
RESET agentcache.context_turns;
SELECT seq, role, content, meta FROM agentcache.get_turns('np-1');
SELECT seq, content FROM agentcache.get_turns('np-1', 1);
SELECT agentcache.get_context('np-unknown') AS unknown;
-- own uncommitted turns visible; nothing after rollback
BEGIN;
SELECT agentcache.add_turn('np-1', 'user', 'uncommitted') AS s4;
SELECT jsonb_array_length(agentcache.get_context('np-1')) AS inside;
ROLLBACK;
SELECT jsonb_array_length(agentcache.get_context('np-1')) AS after_rollback;
-- direct DML is reflected
UPDATE agentcache.turns SET content = 'be very brief' WHERE session_id = 'np-1' AND seq = 1;
SELECT agentcache.get_context('np-1')->0->>'content' AS updated;
-- 40 turns, more than agentcache.session_turns
SELECT count(agentcache.add_turn('np-2', 'user', 't' || g)) FROM generate_series(1, 40) g;
SELECT jsonb_array_length(agentcache.get_context('np-2', 35)) AS n35,
       agentcache.get_context('np-2', 35)->0->>'content' AS oldest;

-- end_session: nothing is cached, so false
SELECT agentcache.end_session('np-1') AS ended;

-- warm_session needs shared memory: 55000, with the hint (default verbosity)
SELECT agentcache.warm_session('np-1');
\set VERBOSITY sqlstate
SELECT agentcache.warm_session('np-1');
\set VERBOSITY default
-- argument errors come first (22004, then 22023/54000, then 55000)
\set VERBOSITY sqlstate
SELECT agentcache.warm_session(NULL);
SELECT agentcache.warm_session(repeat('x', 257));
\set VERBOSITY default

-- the documented errors are the same as with preload
\set VERBOSITY sqlstate
SELECT agentcache.add_turn(NULL, 'user', 'x');
SELECT agentcache.add_turn('np-1', 'User', 'x');
SELECT agentcache.get_context('np-1', 0);
SELECT agentcache.get_context(repeat('x', 257));
BEGIN READ ONLY;
SELECT jsonb_array_length(agentcache.get_context('np-1')) AS read_only_read;
SELECT agentcache.add_turn('np-1', 'user', 'x');
ROLLBACK;
\set VERBOSITY default

-- stats(): its rows, zero counters
SELECT tier, name, entries, bytes, hits, misses, stale_hits, evictions, expirations, invalidations
  FROM agentcache.stats() WHERE tier = 'session';
SELECT tier, name, hits, misses FROM agentcache.stats WHERE tier = 'session';
SELECT agentcache.reset_stats();
SELECT hits, misses FROM agentcache.stats() WHERE tier = 'session';

-- the boundary self-test: C++ errors still work, the lock needs shared memory
\set VERBOSITY sqlstate
SELECT agentcache._boundary_selftest('cxx');
SELECT agentcache._boundary_selftest('pg');
SELECT agentcache._boundary_selftest('lwlock');
SELECT agentcache._boundary_selftest('cxx_lwlock');
\set VERBOSITY default
SELECT 1 AS still_alive;

-- lookup maps need shared memory: lookup, resolve_instance, define_map and
-- refresh_map raise 55000 with the hint (default verbosity)
SELECT agentcache.lookup('instances', 'wa-1');
SELECT agentcache.resolve_instance('wa-1');
SELECT agentcache.define_map('instances', $$SELECT 'wa-1'::text, '{}'::jsonb$$);
SELECT agentcache.refresh_map('instances');
\set VERBOSITY sqlstate
-- argument errors come first (22004, then 22023/54000, then 55000) ...
SELECT agentcache.lookup(NULL, 'k');
SELECT agentcache.lookup('instances', NULL);
SELECT agentcache.resolve_instance(NULL);
SELECT agentcache.define_map(NULL, 'SELECT 1');
SELECT agentcache.define_map('m', NULL);
SELECT agentcache.define_map('m', 'SELECT 1', NULL);
SELECT agentcache.define_map('', 'SELECT 1');
SELECT agentcache.define_map('m', 'SELECT 1', '0');
SELECT agentcache.define_map(repeat('x', 64), 'SELECT 1');
SELECT agentcache.refresh_map(NULL);
SELECT agentcache.refresh_map('');
SELECT agentcache.refresh_map(repeat('x', 64));
SELECT agentcache.lookup(repeat('x', 64), 'k');
-- ... then 55000, before 25006 (read-only) and 42704 (unknown map)
SELECT agentcache.lookup('no_such_map', 'k');
SELECT agentcache.refresh_map('no_such_map');
BEGIN READ ONLY;
SELECT agentcache.define_map('m', 'SELECT 1');
ROLLBACK;
\set VERBOSITY default
-- nothing was defined
SELECT count(*) AS maps FROM agentcache.maps;
-- drop_map works without shared memory: an unknown name is no error
SELECT agentcache.drop_map('no_such_map') AS dropped;
\set VERBOSITY sqlstate
SELECT agentcache.drop_map(NULL);
SELECT agentcache.drop_map('');
BEGIN READ ONLY;
SELECT agentcache.drop_map('no_such_map');
ROLLBACK;
\set VERBOSITY default
-- refresh_trigger is not listed as raising 55000: changes to a source table work
CREATE TABLE np_src (k text PRIMARY KEY, v int);
CREATE TRIGGER np_src_stmt AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON np_src
   FOR EACH STATEMENT EXECUTE FUNCTION agentcache.refresh_trigger('instances');
CREATE TRIGGER np_src_row AFTER INSERT OR UPDATE OR DELETE ON np_src
   FOR EACH ROW EXECUTE FUNCTION agentcache.refresh_trigger('instances');
INSERT INTO np_src VALUES ('a', 1), ('b', 2);
BEGIN;
UPDATE np_src SET v = v + 1;
DELETE FROM np_src WHERE k = 'a';
COMMIT;
BEGIN;
INSERT INTO np_src VALUES ('c', 3);
ROLLBACK;
TRUNCATE np_src;
SELECT count(*) AS rows_left FROM np_src;
DROP TABLE np_src;
-- health(): no worker, map_memory reported; stats(): no map rows
SELECT agentcache.health()->'worker'->'alive' AS worker_alive,
       agentcache.health()->'worker'->'pid' AS worker_pid,
       agentcache.health()->'map_memory' ?& ARRAY['used', 'limit'] AS map_memory_keys,
       (agentcache.health()->'map_memory'->>'used') ~ '^[0-9]+$' AS map_used_is_integer,
       (agentcache.health()->'map_memory'->>'limit') ~ '^[0-9]+$' AS map_limit_is_integer;
SELECT count(*) AS map_rows FROM agentcache.stats() WHERE tier = 'map';

-- ---------------------------------------------------------------- TTL cache (table-backed: works)
SET agentcache.default_ttl = '3min';
SELECT agentcache.put('np-ttl', 'a', '{"x": [1, "two", null]}') AS put_a;
SELECT agentcache.get('np-ttl', 'a') AS a, agentcache.get('np-ttl', 'absent') IS NULL AS absent;
RESET agentcache.default_ttl;
-- the namespace was created with the GUC's value; the entry expires with it
SELECT default_ttl, max_entries FROM agentcache.namespaces WHERE namespace = 'np-ttl';
SELECT expires_at > clock_timestamp() + interval '2 minutes' AND expires_at <= clock_timestamp() + interval '3 minutes'
       AS expires_in_3min
  FROM agentcache.entries WHERE namespace = 'np-ttl' AND key = 'a';
-- upsert, tags, get_stale on an expired entry (moved into the past directly)
SELECT agentcache.put('np-ttl', 'a', '"replaced"', '1 hour', ARRAY['np-tag']) AS upsert;
SELECT agentcache.get('np-ttl', 'a') AS a;
SELECT agentcache.put('np-ttl', 'old', '"old"', '1 hour', ARRAY['np-tag']) AS put_old;
UPDATE agentcache.entries SET expires_at = clock_timestamp() - interval '1 minute'
 WHERE namespace = 'np-ttl' AND key = 'old';
SELECT agentcache.get('np-ttl', 'old') IS NULL AS expired,
       agentcache.get_stale('np-ttl', 'old', '1 hour') AS within_max_stale,
       agentcache.get_stale('np-ttl', 'old', '1 second') IS NULL AS beyond_max_stale;
-- fetch: miss runs the query once and stores, hit does not run it
CREATE TABLE np_calls (id serial);
CREATE FUNCTION np_compute(v int) RETURNS int LANGUAGE sql VOLATILE AS $$
  INSERT INTO np_calls DEFAULT VALUES RETURNING v
$$;
SELECT agentcache.fetch('np-ttl', 'f', 'SELECT np_compute(7)') AS miss,
       agentcache.fetch('np-ttl', 'f', 'SELECT np_compute(8)') AS hit,
       agentcache.fetch('np-ttl', 't', $$SELECT 'text'::text$$, '1 hour') AS text_value;
SELECT count(*) AS query_runs FROM np_calls;
SELECT agentcache.fetch('np-ttl', 'zero', 'SELECT 1 WHERE false') IS NULL AS zero_rows,
       agentcache.get('np-ttl', 'zero') IS NULL AS not_cached;
-- stale_if_error serves the expired value with a WARNING
SELECT agentcache.fetch('np-ttl', 'old', 'SELECT 1/0', NULL, '1 hour') AS stale;
\set VERBOSITY sqlstate
SELECT agentcache.fetch('np-ttl', 'old', 'SELECT 1/0');
SELECT agentcache.fetch('np-ttl', 'many', 'SELECT generate_series(1, 2)');
\set VERBOSITY default
-- invalidate, invalidate_tag, clear; invalidation is transactional
SELECT agentcache.invalidate('np-ttl', 'f') AS inv, agentcache.invalidate('np-ttl', 'f') AS again;
BEGIN;
SELECT agentcache.invalidate_tag('np-tag') AS tag_inv;
SELECT agentcache.get('np-ttl', 'a') IS NULL AS own_invalidation_seen;
ROLLBACK;
SELECT agentcache.get('np-ttl', 'a') AS back_after_rollback;
SELECT agentcache.invalidate_tag('np-tag') AS tag_inv;
SELECT key FROM agentcache.entries WHERE namespace = 'np-ttl' ORDER BY key;
SELECT agentcache.clear('np-ttl') AS cleared, agentcache.clear('np-ttl') AS again;
-- configure_namespace and max_entries
SELECT agentcache.configure_namespace('np-max', NULL, 2) AS configured;
SELECT agentcache.put('np-max', 'h1', '1', '1 hour') AS p1, agentcache.put('np-max', 'forever', '1') AS p2;
SELECT agentcache.put('np-max', 'h2', '1', '2 hours') AS p3;
SELECT key, expires_at IS NULL AS no_expiry FROM agentcache.entries WHERE namespace = 'np-max' ORDER BY key;
-- invalidate_trigger
CREATE TABLE np_orders (id int, tenant_id int);
CREATE TRIGGER np_orders_inv AFTER INSERT OR UPDATE OR DELETE ON np_orders
  FOR EACH ROW EXECUTE FUNCTION agentcache.invalidate_trigger('tenant:{tenant_id}');
SELECT agentcache.put('np-trg', k, '1', NULL, ARRAY[k]) AS put FROM unnest(ARRAY['tenant:1', 'tenant:2', 'tenant:3']) k;
INSERT INTO np_orders VALUES (1, 1);
UPDATE np_orders SET tenant_id = 2;
SELECT key FROM agentcache.entries WHERE namespace = 'np-trg' ORDER BY key;
DROP TABLE np_orders;
-- READ ONLY: reads and a fetch miss (not stored) work; writes 25006
SELECT agentcache.put('np-ro', 'k', '"cached"') AS put;
BEGIN READ ONLY;
SELECT agentcache.get('np-ro', 'k') AS get, agentcache.fetch('np-ro', 'k', 'SELECT 0') AS hit,
       agentcache.fetch('np-ro', 'miss', 'SELECT 1') AS miss;
\set VERBOSITY sqlstate
SELECT agentcache.put('np-ro', 'k', '1');
ROLLBACK;
BEGIN READ ONLY;
SELECT agentcache.invalidate('np-ro', 'k');
ROLLBACK;
-- argument errors are the same as with preload (22004, 54000, 22023)
SELECT agentcache.put('np-ro', 'k', NULL);
SELECT agentcache.get(NULL, 'k');
SELECT agentcache.get(repeat('n', 64), 'k');
SELECT agentcache.put('np-ro', repeat('k', 1025), '1');
SELECT agentcache.put('np-ro', 'k', '1', '0');
SELECT agentcache.fetch('np-ro', 'k', 'SELECT 1', '-1 second');
SELECT agentcache.configure_namespace('np-ro', '1 hour', 0);
\set VERBOSITY default
SELECT agentcache.get('np-ro', 'miss') IS NULL AS miss_not_stored;
-- clear_all (admin)
SELECT agentcache.clear_all() > 0 AS cleared_all;
SELECT count(*) AS entries_left FROM agentcache.entries;
-- stats() still answers; no TTL counter moved (nothing in shared memory)
SELECT count(*) > 0 AS has_rows,
       count(*) FILTER (WHERE tier = 'ttl' AND hits + misses + stale_hits + evictions + invalidations <> 0) AS ttl_counters_moved
  FROM agentcache.stats();
DROP TABLE np_calls;
DROP FUNCTION np_compute(int);

-- ---------------------------------------------------------------- dedup (table + advisory locks: works)
SELECT agentcache.dedup_begin('np-d1') AS acquired, agentcache.dedup_begin('np-d1') AS holder_again;
SELECT state, holder_pid = pg_backend_pid() AS mine, attempts FROM agentcache.dedup_state('np-d1');
SELECT count(*) AS claims FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = -21498 AND pid = pg_backend_pid();
SELECT agentcache.dedup_complete('np-d1') AS completed;
SELECT agentcache.dedup_begin('np-d1') AS duplicate;
SELECT state, holder_pid IS NULL AS no_holder, attempts FROM agentcache.dedup_state('np-d1');
SELECT count(*) AS claims FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = -21498 AND pid = pg_backend_pid();
-- fail and retry; fingerprints
SELECT agentcache.dedup_begin('np-d2', 'np-conv', 'same body') AS acquired;
SELECT agentcache.dedup_fail('np-d2', 'boom') AS failed;
SELECT state, attempts, error FROM agentcache.dedup_state('np-d2');
SELECT agentcache.dedup_begin('np-d2') AS retry;
SELECT state, attempts, error, fingerprint IS NOT NULL AS has_fingerprint FROM agentcache.dedup_state('np-d2');
SELECT agentcache.dedup_complete('np-d2') AS completed;
SELECT agentcache.dedup_begin('np-d3', 'np-conv', 'same body') AS fingerprint_duplicate,
       (SELECT count(*) FROM agentcache.dedup WHERE message_id = 'np-d3') AS rows_d3;
-- claims follow the transaction
BEGIN;
SELECT agentcache.dedup_begin('np-d4') AS acquired;
ROLLBACK;
SELECT count(*) AS state_rows FROM agentcache.dedup_state('np-d4');
SELECT count(*) AS claims FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = -21498 AND pid = pg_backend_pid();
-- the documented errors are the same as with preload
\set VERBOSITY sqlstate
SELECT agentcache.dedup_begin(NULL);
SELECT agentcache.dedup_begin(repeat('x', 257));
SELECT agentcache.dedup_begin('np-d5', NULL, NULL, '0');
SELECT agentcache.dedup_complete('np-d5');
SELECT agentcache.dedup_fail('np-d1');
BEGIN READ ONLY;
SELECT agentcache.dedup_begin('np-d5');
ROLLBACK;
\set VERBOSITY default
SELECT agentcache.dedup_release('np-d1') AS released, agentcache.dedup_release('np-d1') AS again;
SELECT agentcache.dedup_begin('np-d1') AS after_release;
SELECT agentcache.dedup_complete('np-d1') AS completed;
SELECT (agentcache.health()->'dedup'->>'claims_held') ~ '^[0-9]+$' AS claims_held_is_integer;

-- ---------------------------------------------------------------- the hot path (works: route null)
SELECT r->'route' AS route, r->>'dedup' AS dedup, jsonb_path_query_array(r->'context', '$[*].role') AS roles,
       jsonb_path_query_array(r->'context', '$[*].content') AS contents
  FROM agentcache.inbound('wa-1', 'np-h1', 'np-h', 'hi') r;
-- the holder's repeat adds nothing
SELECT r->>'dedup' AS dedup, jsonb_path_query_array(r->'context', '$[*].content') AS contents
  FROM agentcache.inbound('wa-1', 'np-h1', 'np-h', 'hi') r;
SELECT agentcache.outbound('np-h1', 'np-h', 'hello', '{"m": 1}') > 0 AS replied;
SELECT r->'route' AS route, r->>'dedup' AS dedup, jsonb_path_query_array(r->'context', '$[*].content') AS contents,
       r->'context'->-1->'meta' AS meta
  FROM agentcache.inbound('wa-1', 'np-h1', 'np-h', 'hi') r;
SELECT state, attempts FROM agentcache.dedup_state('np-h1');
-- outbound rolled back: neither turn nor completion
SELECT agentcache.inbound('wa-1', 'np-h2', 'np-h', 'again')->>'dedup' AS dedup;
BEGIN;
SELECT agentcache.outbound('np-h2', 'np-h', 'rolled back') > 0 AS replied;
ROLLBACK;
SELECT state, holder_pid = pg_backend_pid() AS mine FROM agentcache.dedup_state('np-h2');
SELECT agentcache.outbound('np-h2', 'np-h', 'committed') > 0 AS replied;
SELECT role, content FROM agentcache.get_turns('np-h');
\set VERBOSITY sqlstate
SELECT agentcache.outbound('np-h1', 'np-h', 'not held');
SELECT agentcache.inbound('wa-1', 'np-h3', 'np-h', NULL);
SELECT agentcache.inbound('wa-1', 'np-h3', repeat('s', 257), 'x');
BEGIN READ ONLY;
SELECT agentcache.inbound('wa-1', 'np-h3', 'np-h', 'x');
ROLLBACK;
\set VERBOSITY default
SELECT count(*) AS turns FROM agentcache.turns WHERE session_id = 'np-h';
-- stats(): the dedup row, zero counters
SELECT tier, name, hits, misses, stale_hits, evictions, invalidations FROM agentcache.stats() WHERE tier = 'dedup';
SELECT agentcache.forget_session('np-h') AS deleted;
SELECT count(agentcache.dedup_release(message_id)) AS released FROM agentcache.dedup;

-- forget_session deletes the history
SELECT agentcache.forget_session('np-1') AS deleted, agentcache.forget_session('np-2') AS deleted2;
SELECT agentcache.get_context('np-1') AS after_forget;
SELECT count(*) AS rows_left FROM agentcache.turns;

-- DROP and CREATE again
DROP EXTENSION agentcache;
CREATE EXTENSION agentcache;
SELECT agentcache.health()->'preloaded' AS preloaded;
SELECT agentcache.add_turn('np-3', 'user', 'again') AS s1;
SELECT agentcache.forget_session('np-3') AS deleted;
-- token_count works without preload (the backend loads the rank table itself)
SELECT agentcache.token_count('Hello, world!') AS o200k, agentcache.token_count('Hello, world!', 'cl100k_base') AS cl100k;
DROP EXTENSION agentcache;
-- _PG_init defined every GUC even though it could not reserve shared memory
SHOW agentcache.session_memory;
SHOW agentcache.session_turns;
SHOW agentcache.context_turns;
SHOW agentcache.max_turn_bytes;
