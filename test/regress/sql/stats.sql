--
-- stats: the stats() function and view, health(), reset_stats(), and LRU
-- eviction under a small agentcache.session_memory (8MB in test/preload.conf).
--
SET TimeZone = 'UTC';

-- ---------------------------------------------------------------- shape
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a
 WHERE a.attrelid = 'agentcache.stats'::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum;
SELECT pg_get_function_result('agentcache.stats()'::regprocedure) AS stats_result;
-- one session row, named 'sessions'; the function and the view agree on it
SELECT tier, name FROM agentcache.stats() WHERE tier = 'session';
SELECT tier, name FROM agentcache.stats WHERE tier = 'session';
SELECT count(*) AS session_rows FROM agentcache.stats() WHERE tier = 'session';
-- counters are never NULL or negative
SELECT tier, name,
       entries >= 0 AND bytes >= 0 AND hits >= 0 AND misses >= 0 AND stale_hits >= 0
       AND evictions >= 0 AND expirations >= 0 AND invalidations >= 0 AS sane
  FROM agentcache.stats() WHERE tier = 'session';

-- ---------------------------------------------------------------- health()
SELECT jsonb_typeof(agentcache.health()) AS type,
       agentcache.health() ?& ARRAY['preloaded', 'worker', 'session_memory', 'map_memory'] AS has_keys,
       agentcache.health()->'preloaded' AS preloaded;
SELECT agentcache.health()->'worker' ?& ARRAY['pid', 'alive', 'last_sweep', 'last_refresh'] AS worker_keys,
       jsonb_typeof(agentcache.health()->'worker'->'alive') AS alive_type,
       jsonb_typeof(agentcache.health()->'worker'->'pid') IN ('number', 'null') AS pid_type_ok;
SELECT k, jsonb_typeof(agentcache.health()->k->'used') AS used_type,
       jsonb_typeof(agentcache.health()->k->'limit') AS limit_type,
       (agentcache.health()->k->>'used') ~ '^[0-9]+$' AS used_is_integer,
       (agentcache.health()->k->>'limit') ~ '^[0-9]+$' AS limit_is_integer
  FROM unnest(ARRAY['session_memory', 'map_memory']) k;
-- 8MB = 8388608 bytes with test/preload.conf
SELECT (agentcache.health()->'session_memory'->>'limit')::bigint AS session_limit;
-- worker: pid null exactly when not alive
SELECT (agentcache.health()->'worker'->>'alive')::boolean
         = (agentcache.health()->'worker'->'pid' <> 'null'::jsonb) AS pid_iff_alive;

-- ---------------------------------------------------------------- entries / bytes grow
SELECT entries AS e0, bytes AS b0 FROM agentcache.stats() WHERE tier = 'session' \gset
SELECT (agentcache.health()->'session_memory'->>'used')::bigint AS u0 \gset
SELECT count(agentcache.add_turn('st-' || s, 'user', repeat('z', 500) || t))
  FROM generate_series(1, 3) s, generate_series(1, 10) t;
SELECT sum(agentcache.warm_session('st-' || s)) AS cached_turns FROM generate_series(1, 3) s;
SELECT entries - :e0 AS entries_delta, bytes > :b0 AS bytes_grew
  FROM agentcache.stats() WHERE tier = 'session';
SELECT (agentcache.health()->'session_memory'->>'used')::bigint > :u0 AS used_grew,
       (agentcache.health()->'session_memory'->>'used')::bigint > 0 AS used_positive,
       (agentcache.health()->'session_memory'->>'used')::bigint
         <= (agentcache.health()->'session_memory'->>'limit')::bigint AS used_within_limit;
-- end_session gives the memory back
SELECT sum(agentcache.end_session('st-' || s)::int) AS ended FROM generate_series(1, 3) s;
SELECT entries - :e0 AS entries_delta FROM agentcache.stats() WHERE tier = 'session';

-- ---------------------------------------------------------------- hits / misses / reset_stats
SELECT agentcache.get_context('st-1') IS NOT NULL AS loaded;
SELECT agentcache.get_context('st-1') IS NOT NULL AS cached_read;
SELECT hits > 0 AS some_hits, misses > 0 AS some_misses FROM agentcache.stats() WHERE tier = 'session';
SELECT agentcache.reset_stats();
SELECT hits, misses, stale_hits, evictions, expirations, invalidations
  FROM agentcache.stats() WHERE tier = 'session';
-- reset zeroes counters, not contents
SELECT entries - :e0 AS entries_delta FROM agentcache.stats() WHERE tier = 'session';
SELECT jsonb_array_length(agentcache.get_context('st-1')) AS turns;
SELECT jsonb_array_length(agentcache.get_context('st-2')) AS turns;
SELECT hits, misses FROM agentcache.stats() WHERE tier = 'session';
SELECT hits, misses FROM agentcache.stats WHERE tier = 'session';

-- ---------------------------------------------------------------- evictions
-- 200 sessions x 30 turns x 2000 characters (~12MB of content) cannot all
-- stay in 8MB: least recently used sessions are evicted, no call fails.
SELECT evictions AS ev0 FROM agentcache.stats() WHERE tier = 'session' \gset
SELECT count(agentcache.add_turn('ev-' || s, CASE WHEN t % 2 = 0 THEN 'assistant' ELSE 'user' END,
                                 s || ':' || t || ':' || repeat(chr(97 + (s + t) % 26), 2000)))
  FROM generate_series(1, 200) s, generate_series(1, 30) t;
SELECT sum(agentcache.warm_session('ev-' || s)) AS cached_turns,
       count(*) FILTER (WHERE agentcache.warm_session('ev-' || s) <> 30) AS not_30
  FROM generate_series(1, 200) s;
SELECT evictions > :ev0 AS evicted, entries < 203 AS fewer_than_all
  FROM agentcache.stats() WHERE tier = 'session';
SELECT (agentcache.health()->'session_memory'->>'used')::bigint
         <= (agentcache.health()->'session_memory'->>'limit')::bigint AS used_within_limit;
-- every session, evicted or not, reads correctly (from memory or the table)
SELECT count(*) AS sessions,
       count(*) FILTER (WHERE jsonb_array_length(agentcache.get_context('ev-' || s)) = 30) AS full_30,
       count(*) FILTER (WHERE agentcache.get_context('ev-' || s) = (
           SELECT jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content,
                                               'at', to_jsonb(created_at)) ORDER BY seq)
             FROM agentcache.turns WHERE session_id = 'ev-' || s)) AS correct,
       count(*) FILTER (WHERE agentcache.get_context('ev-' || s, 5, 4020)->0->>'content'
                              = (SELECT content FROM agentcache.turns
                                  WHERE session_id = 'ev-' || s AND seq = 29)) AS trimmed_ok
  FROM generate_series(1, 200) s;
-- the first sessions were evicted long ago: still correct
SELECT jsonb_array_length(agentcache.get_context('ev-1')) AS ev1,
       agentcache.get_context('ev-1')->0->>'seq' AS first_seq,
       left(agentcache.get_context('ev-1')->-1->>'content', 8) AS newest;
-- a read that has to evict
SELECT agentcache.end_session('ev-1');
SELECT evictions AS ev1 FROM agentcache.stats() WHERE tier = 'session' \gset
SELECT agentcache.warm_session('ev-1') AS warmed;
SELECT evictions >= :ev1 AS counted FROM agentcache.stats() WHERE tier = 'session';
-- new turns to sessions while the cache is full
SELECT count(agentcache.add_turn('ev-' || s, 'user', repeat('n', 3000))) AS added
  FROM generate_series(1, 200, 7) s;
SELECT count(*) FILTER (WHERE agentcache.get_context('ev-' || s)->-1->>'content' = repeat('n', 3000)) AS newest_ok,
       count(*) FILTER (WHERE jsonb_array_length(agentcache.get_context('ev-' || s)) = 30) AS still_30
  FROM generate_series(1, 200, 7) s;

-- ---------------------------------------------------------------- cleanup
SELECT sum(agentcache.forget_session('ev-' || s)) AS deleted FROM generate_series(1, 200) s;
SELECT sum(agentcache.forget_session('st-' || s)) AS deleted FROM generate_series(1, 3) s;
SELECT count(*) AS rows_left FROM agentcache.turns;
SELECT entries AS entries_left FROM agentcache.stats() WHERE tier = 'session';
