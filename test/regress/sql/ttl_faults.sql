--
-- ttl_faults: the TTL tier's bounds and faults (API.md 0.2.0, "Resource
-- bounds", "Concurrency and background activity"): times too far ahead are
-- "never", a failed put leaves no counter slot, fetch's query is a single
-- plain statement, a cancel or statement_timeout is never a stale answer, and
-- the direct read finds its columns by name.
--
SET TimeZone = 'UTC';

-- ---------------------------------------------------------------- TTLs past the end of time
-- a namespace default far beyond timestamptz: its entries never expire
SELECT agentcache.configure_namespace('tf-far', '300000 years');
SELECT agentcache.put('tf-far', 'k', '"v"');
SELECT agentcache.get('tf-far', 'k') AS value,
       (SELECT expires_at IS NULL FROM agentcache.entries WHERE namespace = 'tf-far' AND key = 'k') AS never;
SELECT count(*) AS readable FROM agentcache.entries WHERE expires_at IS NOT NULL OR expires_at IS NULL;
-- the same for a put's own ttl and a fetch's
SELECT agentcache.put('tf-far', 'k2', '"v2"', '1000000 years');
SELECT agentcache.fetch('tf-far', 'k3', 'SELECT 3', '292271 years');
SELECT key, expires_at IS NULL AS never FROM agentcache.entries WHERE namespace = 'tf-far' ORDER BY key;
-- a ttl that still fits stays a time
SELECT agentcache.put('tf-far', 'k4', '4', '1000 years');
SELECT expires_at > now() + interval '999 years' AS far_but_finite FROM agentcache.entries
 WHERE namespace = 'tf-far' AND key = 'k4';
SELECT agentcache.clear('tf-far');
DELETE FROM agentcache.namespaces WHERE namespace = 'tf-far';

-- ---------------------------------------------------------------- a failed put leaves no slot
CREATE ROLE regress_tf_usage NOLOGIN;
GRANT USAGE ON SCHEMA agentcache TO regress_tf_usage;
SET ROLE regress_tf_usage;
SELECT sqlstate_of($$SELECT agentcache.put('tf-leak', 'k', '1')$$) AS put_without_privileges;
RESET ROLE;
SELECT count(*) AS slots_of_the_failed_namespace FROM agentcache.stats() WHERE tier = 'ttl' AND name = 'tf-leak';
SELECT count(*) AS namespace_rows FROM agentcache.namespaces WHERE namespace = 'tf-leak';
DROP OWNED BY regress_tf_usage;
DROP ROLE regress_tf_usage;

-- ---------------------------------------------------------------- fetch's query: one plain statement
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.fetch('tf', 'k', 'commit')$$),
  ($$SELECT agentcache.fetch('tf', 'k', 'rollback')$$),
  ($$SELECT agentcache.fetch('tf', 'k', 'begin')$$),
  ($$SELECT agentcache.fetch('tf', 'k', 'SELECT 1; SELECT 2')$$),
  ($$SELECT agentcache.fetch('tf', 'k', 'VACUUM')$$),
  ($$SELECT agentcache.fetch('tf', 'k', 'SELEC 1')$$),
  ($$SELECT agentcache.fetch('tf', 'k', 'SELECT pg_sleep(0)')$$)
) v(q);

-- ---------------------------------------------------------------- a cancel is not a stale answer
SELECT agentcache.put('tf', 'slow', '"old"', '1 second');
SELECT pg_sleep(1.1);
SELECT agentcache.get('tf', 'slow') IS NULL AS expired,
       agentcache.get_stale('tf', 'slow', '1 hour') AS stale_available;
-- an ERROR of the query itself: the stale value, with a WARNING
SELECT agentcache.fetch('tf', 'slow', 'SELECT 1/0', stale_if_error => '1 hour') AS stale_on_error;
-- statement_timeout while the query runs: 57014 propagates, no stale answer
SET statement_timeout = '200ms';
-- (PL/pgSQL cannot catch a cancel: the statement fails with it)
SELECT agentcache.fetch('tf', 'slow', 'SELECT pg_sleep(5)::text', stale_if_error => '1 hour') AS timeout_propagates;
RESET statement_timeout;
SELECT agentcache.clear('tf');

-- ---------------------------------------------------------------- columns found by name
-- in a database of its own: the extension's table is altered
CREATE DATABASE agentcache_tf;
\c agentcache_tf
SET client_min_messages = warning;
CREATE EXTENSION agentcache;
RESET client_min_messages;
SELECT agentcache.put('ns', 'k', '"before"', '1 hour');
-- value and expires_at move to new attribute numbers
ALTER TABLE agentcache.entries DROP COLUMN expires_at;
ALTER TABLE agentcache.entries ADD COLUMN expires_at timestamptz;
ALTER TABLE agentcache.entries RENAME COLUMN value TO value_old;
ALTER TABLE agentcache.entries ADD COLUMN value jsonb;
UPDATE agentcache.entries SET value = value_old;
ALTER TABLE agentcache.entries DROP COLUMN value_old;
SELECT attname, attnum FROM pg_attribute WHERE attrelid = 'agentcache.entries'::regclass AND attnum > 0
   AND NOT attisdropped ORDER BY attnum;
SELECT agentcache.get('ns', 'k') AS moved_columns_read;
SELECT agentcache.put('ns', 'k', '"after"', '1 hour');
SELECT agentcache.get('ns', 'k') AS written_through_sql, agentcache.fetch('ns', 'k', 'SELECT 1') AS fetch_hit;
\c contrib_regression
DROP DATABASE agentcache_tf;
