--
-- maps_faults: the maps tier's bounds and faults (API.md 0.2.0, "Resource
-- bounds"): a refresh interval past the end of time is "never" (and the
-- worker does not reload the map every cycle), a lookup counts one hit
-- however big the value, keeps no backend memory, and reads no table; DROP
-- DATABASE and DROP EXTENSION free their maps' shared memory at once.
--
SET TimeZone = 'UTC';

-- ---------------------------------------------------------------- refresh past the end of time
SELECT agentcache.define_map('mf_far', $$SELECT 'k'::text, '1'::jsonb$$, '1000000 years');
SELECT agentcache.define_map('mf_edge', $$SELECT 'k'::text, '2'::jsonb$$, '292270 years');
SELECT name, refresh FROM agentcache.maps WHERE name LIKE 'mf_%' ORDER BY name;
-- the worker has had its first look at both; from then on neither is due
SELECT pg_sleep(0.5);
SELECT name, last_refresh AS r0 FROM agentcache.maps WHERE name = 'mf_edge' \gset
SELECT last_refresh AS far0 FROM agentcache.maps WHERE name = 'mf_far' \gset
SELECT pg_sleep(1.5);
SELECT last_refresh = :'r0' AS edge_not_reloaded FROM agentcache.maps WHERE name = 'mf_edge';
SELECT last_refresh = :'far0' AS far_not_reloaded FROM agentcache.maps WHERE name = 'mf_far';
-- an explicit refresh still works
SELECT agentcache.refresh_map('mf_far') AS refreshed_on_demand;
SELECT agentcache.lookup('mf_far', 'k') AS far, agentcache.lookup('mf_edge', 'k') AS edge;

-- ---------------------------------------------------------------- one lookup, one hit
SELECT agentcache.define_map('mf_big', $$SELECT 'small'::text, '"s"'::jsonb
  UNION ALL SELECT 'big', pg_catalog.to_jsonb(pg_catalog.repeat('x', 20000))
  UNION ALL SELECT 'huge', pg_catalog.to_jsonb(pg_catalog.repeat('y', 1000000))$$);
-- a fresh backend: its first lookup, of a value bigger than any before
\c
SELECT hits AS h0 FROM agentcache.stats() WHERE tier = 'map' AND name = 'mf_big' \gset
SELECT length(agentcache.lookup('mf_big', 'big')::text) AS big_len;
SELECT hits - :h0 AS hits_of_one_big_lookup FROM agentcache.stats() WHERE tier = 'map' AND name = 'mf_big';
SELECT agentcache.lookup('mf_big', 'small') AS small;
SELECT hits - :h0 AS hits_after_two FROM agentcache.stats() WHERE tier = 'map' AND name = 'mf_big';

-- ---------------------------------------------------------------- no backend memory kept
SELECT total_bytes AS top0 FROM pg_backend_memory_contexts WHERE name = 'TopMemoryContext' \gset
SELECT length(agentcache.lookup('mf_big', 'huge')::text) AS huge_len;
SELECT sum(length(agentcache.lookup('mf_big', 'huge')::text)) AS ten_huge FROM generate_series(1, 10);
SELECT total_bytes - :top0 < 100000 AS top_memory_not_grown
  FROM pg_backend_memory_contexts WHERE name = 'TopMemoryContext';

-- ---------------------------------------------------------------- lookup reads no table
-- mf_scans(q): how the scan counters of the tables (agentcache's and the
-- application's) move while q runs
CREATE FUNCTION mf_scans(q text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE before jsonb; after jsonb;
BEGIN
  SELECT jsonb_object_agg(relid::text, seq_scan + coalesce(idx_scan, 0)) INTO before FROM pg_stat_xact_user_tables;
  EXECUTE q;
  SELECT jsonb_object_agg(relid::text, seq_scan + coalesce(idx_scan, 0)) INTO after FROM pg_stat_xact_user_tables;
  RETURN (SELECT coalesce(jsonb_object_agg(k, (after->>k)::int8 - coalesce((before->>k)::int8, 0)), '{}')
            FROM jsonb_object_keys(after) k WHERE (after->>k)::int8 <> coalesce((before->>k)::int8, 0));
END $$;
-- right after drop_map + define_map + one lookup in this session, 90 lookups
-- scan no table
SELECT agentcache.drop_map('mf_big');
SELECT agentcache.define_map('mf_hot', $$SELECT 'k' || g, pg_catalog.to_jsonb(g) FROM pg_catalog.generate_series(1, 100) g$$);
SELECT agentcache.lookup('mf_hot', 'k1') AS first;
BEGIN;
SELECT mf_scans($$SELECT count(agentcache.lookup('mf_hot', 'k' || (g % 120))) FROM generate_series(1, 90) g$$)
         AS tables_scanned_by_90_lookups;
COMMIT;
-- and touch no buffer of any relation, catalogs included (EXPLAIN prints
-- Buffers only when some were)
BEGIN;
CREATE TEMP TABLE mf_plan (line text);
DO $$
DECLARE l text;
BEGIN
  FOR l IN EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
      SELECT agentcache.lookup('mf_hot', 'k' || (g % 120)) FROM generate_series(1, 90) g LOOP
    INSERT INTO mf_plan VALUES (l);
  END LOOP;
END $$;
SELECT count(*) AS buffer_lines FROM mf_plan WHERE line LIKE '%Buffers:%';
COMMIT;
DROP FUNCTION mf_scans(text);

-- ---------------------------------------------------------------- DROP frees shared memory
SELECT agentcache.drop_map(m) FROM (VALUES ('mf_far'), ('mf_edge'), ('mf_hot')) v(m);
SELECT (agentcache.health()->'map_memory'->>'used')::bigint AS used0 \gset
CREATE DATABASE agentcache_mf;
\c agentcache_mf
SET client_min_messages = warning;
CREATE EXTENSION agentcache;
RESET client_min_messages;
SELECT agentcache.define_map('mf_other', $$SELECT 'k' || g, pg_catalog.to_jsonb(pg_catalog.repeat('v', 100)) FROM pg_catalog.generate_series(1, 2000) g$$);
SELECT (agentcache.health()->'map_memory'->>'used')::bigint > :used0 + 200000 AS other_db_map_in_memory;
-- DROP EXTENSION frees the database's maps at once
DROP EXTENSION agentcache;
\c contrib_regression
SELECT (agentcache.health()->'map_memory'->>'used')::bigint = :used0 AS extension_drop_freed;
-- DROP DATABASE frees them too
\c agentcache_mf
SET client_min_messages = warning;
CREATE EXTENSION agentcache;
RESET client_min_messages;
SELECT agentcache.define_map('mf_other', $$SELECT 'k' || g, pg_catalog.to_jsonb(pg_catalog.repeat('v', 100)) FROM pg_catalog.generate_series(1, 2000) g$$);
\c contrib_regression
SELECT (agentcache.health()->'map_memory'->>'used')::bigint > :used0 + 200000 AS loaded_again;
DROP DATABASE agentcache_mf;
SELECT (agentcache.health()->'map_memory'->>'used')::bigint = :used0 AS database_drop_freed;
