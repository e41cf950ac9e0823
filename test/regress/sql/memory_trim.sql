--
-- memory_trim: max_chars trims whole turns from the oldest side, counting
-- characters (Unicode code points), not bytes.
--
SET TimeZone = 'UTC';

-- Reference in SQL: the newest n turns, then the longest suffix whose total
-- char_length(content) is <= max_chars (NULL: no limit).
CREATE FUNCTION trim_ref(s text, n int, max_chars int) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content,
                                               'at', to_jsonb(created_at))
                            || CASE WHEN meta IS NULL THEN '{}'::jsonb
                                    ELSE jsonb_build_object('meta', meta) END
                            ORDER BY seq), '[]'::jsonb)
    FROM (SELECT *, sum(char_length(content)) OVER (ORDER BY seq DESC) AS suffix_chars
            FROM (SELECT * FROM agentcache.turns WHERE session_id = s ORDER BY seq DESC LIMIT n) t) x
   WHERE max_chars IS NULL OR suffix_chars <= max_chars
$$;
-- contents only, for display
CREATE FUNCTION contents(j jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg(e->>'content' ORDER BY o), '{}') FROM jsonb_array_elements(j) WITH ORDINALITY a(e, o)
$$;

-- 'ação' = 4 characters (6 bytes), '😀😀' = 2 (8 bytes), '漢字テスト' = 5 (15 bytes)
SELECT agentcache.add_turn('trim-1', 'user', 'ação') AS s1,
       agentcache.add_turn('trim-1', 'assistant', '😀😀') AS s2,
       agentcache.add_turn('trim-1', 'user', '漢字テスト') AS s3;
SELECT seq, content, char_length(content) AS chars, octet_length(content) AS bytes
  FROM agentcache.turns WHERE session_id = 'trim-1' ORDER BY seq;

-- cached path (after the first load) and table path (max_turns > 30) alike
SELECT agentcache.warm_session('trim-1');
SELECT mc, contents(agentcache.get_context('trim-1', NULL, mc)) AS cached,
       contents(agentcache.get_context('trim-1', 31, mc)) AS from_table,
       agentcache.get_context('trim-1', NULL, mc) = trim_ref('trim-1', 30, mc) AS cached_ok,
       agentcache.get_context('trim-1', 31, mc) = trim_ref('trim-1', 31, mc) AS table_ok
  FROM unnest(ARRAY[NULL, 100, 29, 12, 11, 10, 8, 7, 6, 5, 4, 1, 0]) mc;

-- trimming is from the oldest side only: a short oldest turn is not kept
-- by skipping a long middle one
SELECT agentcache.add_turn('trim-2', 'user', 'a') AS s1,
       agentcache.add_turn('trim-2', 'assistant', repeat('é', 10)) AS s2,
       agentcache.add_turn('trim-2', 'user', 'b') AS s3;
SELECT mc, contents(agentcache.get_context('trim-2', NULL, mc)) AS kept
  FROM unnest(ARRAY[12, 11, 10, 2, 1, 0]) mc;

-- empty content counts 0 characters: max_chars 0 keeps a run of newest empty turns
SELECT agentcache.add_turn('trim-3', 'user', 'x') AS s1,
       agentcache.add_turn('trim-3', 'assistant', '') AS s2,
       agentcache.add_turn('trim-3', 'tool', '') AS s3;
SELECT jsonb_path_query_array(agentcache.get_context('trim-3', NULL, 0), '$[*].seq') AS max0,
       jsonb_path_query_array(agentcache.get_context('trim-3', NULL, 1), '$[*].seq') AS max1,
       jsonb_path_query_array(agentcache.get_context('trim-3', 1, 0), '$[*].seq') AS turns1_max0,
       jsonb_path_query_array(agentcache.get_context('trim-3', 31, 0), '$[*].seq') AS table_max0;
SELECT agentcache.add_turn('trim-3', 'user', 'y') > 3 AS added;
SELECT agentcache.get_context('trim-3', NULL, 0) AS newest_not_empty_max0;

-- max_chars smaller than the newest turn alone: []
SELECT agentcache.get_context('trim-1', NULL, 4) AS smaller_than_newest,
       agentcache.get_context('trim-1', 31, 4) AS smaller_than_newest_table;

-- max_turns first, then max_chars
SELECT mt, mc, contents(agentcache.get_context('trim-1', mt, mc)) AS kept,
       agentcache.get_context('trim-1', mt, mc) = trim_ref('trim-1', mt, mc) AS ok
  FROM (VALUES (2, 100), (2, 7), (2, 6), (1, 100), (1, 5), (1, 4), (3, 11), (3, 10)) v(mt, mc);
SET agentcache.context_turns = 2;
SELECT contents(agentcache.get_context('trim-1', NULL, 100)) AS context_turns_2;
RESET agentcache.context_turns;

-- A session of exactly 30 turns (= agentcache.session_turns) with mixed
-- scripts: get_context(s, 30, X) is served from memory, get_context(s, 35, X)
-- from the table; both equal the reference for every X.
SELECT count(agentcache.add_turn('trim-30', CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END,
                                 (ARRAY['ação', '😀', '漢字', 'abc', '', 'ñandú', '🇧🇷 ok', 'Ωmega'])[g % 8 + 1]
                                 || repeat('ü', g % 5))) AS added
  FROM generate_series(1, 30) g;
SELECT sum(char_length(content)) AS total_chars, sum(octet_length(content)) AS total_bytes
  FROM agentcache.turns WHERE session_id = 'trim-30';
SELECT agentcache.warm_session('trim-30') AS cached;
SELECT hits AS h0, misses AS m0 FROM agentcache.stats() WHERE tier = 'session' \gset
SELECT count(*) AS x_values,
       count(*) FILTER (WHERE agentcache.get_context('trim-30', 30, x) = trim_ref('trim-30', 30, x)) AS cached_ok,
       count(*) FILTER (WHERE agentcache.get_context('trim-30', 35, x) = trim_ref('trim-30', 35, x)) AS table_ok,
       count(*) FILTER (WHERE agentcache.get_context('trim-30', 30, x) = agentcache.get_context('trim-30', 35, x)) AS same,
       count(*) FILTER (WHERE agentcache.get_context('trim-30', 7, x) = trim_ref('trim-30', 7, x)) AS seven_ok
  FROM generate_series(0, 160) x;
-- the reads of at most 30 turns (161 x 3 of them) were served from memory
SELECT hits - :h0 >= 161 * 3 AS cached_reads_hit FROM agentcache.stats() WHERE tier = 'session';
-- and the same after end_session (a cold load) for a few values
SELECT agentcache.end_session('trim-30') AS dropped;
SELECT x, agentcache.get_context('trim-30', NULL, x) = trim_ref('trim-30', 30, x) AS ok
  FROM unnest(ARRAY[0, 1, 9, 50, 1000]) x;

-- max_chars applies to content only (not meta, role or keys)
SELECT agentcache.add_turn('trim-4', 'assistant', 'abc', jsonb_build_object('big', repeat('m', 500))) AS s1;
SELECT jsonb_array_length(agentcache.get_context('trim-4', NULL, 3)) AS kept_with_meta;

-- cleanup
SELECT agentcache.forget_session(s) AS deleted
  FROM unnest(ARRAY['trim-1', 'trim-2', 'trim-3', 'trim-30', 'trim-4']) s;
SELECT count(*) AS rows_left FROM agentcache.turns;
DROP FUNCTION trim_ref(text, int, int);
DROP FUNCTION contents(jsonb);
