--
-- interval_infinity: from PostgreSQL 17 on, 'infinity' and '-infinity' are
-- valid intervals. agentcache treats 'infinity' as it treats any interval
-- past the end of time (API.md 0.2.0, "Resource bounds"): a TTL, a dedup
-- window or a refresh interval of 'infinity' means "never"; '-infinity' is a
-- negative interval (22023 where a positive one is required). On 15 the
-- literal itself is invalid input (22007), which is all the alternative
-- expected file interval_infinity_1.out shows.
--
SET TimeZone = 'UTC';
CREATE FUNCTION inf_sqlstate(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;

-- ---------------------------------------------------------------- TTLs
-- a namespace whose default TTL is infinite: its entries never expire
SELECT agentcache.configure_namespace('inf-ns', 'infinity');
SELECT agentcache.put('inf-ns', 'k', '"v"');
-- a put's own TTL and a fetch's
SELECT agentcache.put('inf-ns', 'k2', '"v2"', 'infinity');
SELECT agentcache.fetch('inf-ns', 'k3', 'SELECT 3', 'infinity');
SELECT key, expires_at IS NULL AS never FROM agentcache.entries WHERE namespace = 'inf-ns' ORDER BY key;
SELECT agentcache.get('inf-ns', 'k') AS k, agentcache.get('inf-ns', 'k2') AS k2, agentcache.get('inf-ns', 'k3') AS k3;
-- '-infinity' is not a positive TTL
SELECT inf_sqlstate($$SELECT agentcache.put('inf-ns', 'k4', '4', '-infinity')$$) AS put_minus_infinity,
       inf_sqlstate($$SELECT agentcache.configure_namespace('inf-ns2', '-infinity')$$) AS default_minus_infinity;
-- stale reads: an infinite max_stale accepts any stale entry, '-infinity' is negative
SELECT inf_sqlstate($$SELECT agentcache.get_stale('inf-ns', 'k', 'infinity')$$) AS max_stale_infinity,
       inf_sqlstate($$SELECT agentcache.get_stale('inf-ns', 'k', '-infinity')$$) AS max_stale_minus_infinity;
SELECT agentcache.clear('inf-ns');

-- ---------------------------------------------------------------- dedup windows
SELECT agentcache.dedup_begin('inf-m', NULL, NULL, 'infinity') AS taken;
SELECT agentcache.dedup_complete('inf-m');
SELECT expires_at = 'infinity' AS never FROM agentcache.dedup WHERE message_id = 'inf-m';
SELECT agentcache.dedup_begin('inf-m') AS still_duplicate;
SELECT agentcache.dedup_release('inf-m');
SELECT inf_sqlstate($$SELECT agentcache.dedup_begin('inf-m2', NULL, NULL, '-infinity')$$) AS window_minus_infinity;

-- ---------------------------------------------------------------- map refresh
SELECT agentcache.define_map('inf_map', $$SELECT 'k'::text, '1'::jsonb$$, 'infinity');
SELECT name, refresh FROM agentcache.maps WHERE name = 'inf_map';
-- the worker takes its first look at a new map (it reloads it once, after
-- the defining transaction); wait for that, then the map is never due
SELECT set_config('inf.d0', last_refresh::text, false) IS NOT NULL AS defined
  FROM agentcache.maps WHERE name = 'inf_map';
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN coalesce((SELECT last_refresh FROM agentcache.maps WHERE name = 'inf_map')
                       > current_setting('inf.d0', true)::timestamptz, true);
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT last_refresh AS r0 FROM agentcache.maps WHERE name = 'inf_map' \gset
SELECT pg_sleep(1.5);
SELECT last_refresh = :'r0' AS not_reloaded FROM agentcache.maps WHERE name = 'inf_map';
SELECT agentcache.lookup('inf_map', 'k') AS value;
SELECT inf_sqlstate($$SELECT agentcache.define_map('inf_map2', 'SELECT ''k''::text, ''1''::jsonb', '-infinity')$$)
       AS refresh_minus_infinity;
SELECT agentcache.drop_map('inf_map');
DROP FUNCTION inf_sqlstate(text);
