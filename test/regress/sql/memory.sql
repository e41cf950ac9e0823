--
-- memory: conversation memory — add_turn, get_context, get_turns,
-- warm_session, end_session, forget_session, transactions.
--
SET TimeZone = 'UTC';

-- The reference rendering of a session, built from the table in SQL:
-- newest max_turns turns, oldest first, {"seq","role","content","at"} + "meta"
-- iff meta IS NOT NULL.
CREATE FUNCTION mem_ref(s text, n int) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content,
                                               'at', to_jsonb(created_at))
                            || CASE WHEN meta IS NULL THEN '{}'::jsonb
                                    ELSE jsonb_build_object('meta', meta) END
                            ORDER BY seq), '[]'::jsonb)
    FROM (SELECT * FROM agentcache.turns WHERE session_id = s ORDER BY seq DESC LIMIT n) t
$$;

-- the session tier's counters
CREATE FUNCTION mem_counters(OUT hits bigint, OUT misses bigint) LANGUAGE sql AS $$
  SELECT hits, misses FROM agentcache.stats() WHERE tier = 'session'
$$;

-- ---------------------------------------------------------------- add_turn
-- a fresh session numbers its turns 1, 2, 3
SELECT agentcache.add_turn('mem-a', 'system', 'You are helpful.') AS seq1;
SELECT agentcache.add_turn('mem-a', 'user', 'Olá, tudo bem?', '{"lang": "pt", "n": [1, {"x": null}]}') AS seq2;
SELECT agentcache.add_turn('mem-a', 'assistant', 'Tudo!', 'null') AS seq3;
SELECT agentcache.add_turn('mem-a', 'tool', '{"result": 42}', '7') AS seq4;
-- another session has its own numbering
SELECT agentcache.add_turn('mem-b', 'user', 'other session') AS other_seq1;

-- the durable rows
SELECT session_id, seq, role, content, meta FROM agentcache.turns
 WHERE session_id IN ('mem-a', 'mem-b') ORDER BY session_id, seq;

-- ---------------------------------------------------------------- get_context shape
-- first read (may load from the table), keys and values apart from "at"
SELECT e - 'at' AS turn FROM jsonb_array_elements(agentcache.get_context('mem-a')) e;
-- exactly these keys ("meta" iff meta IS NOT NULL; JSON null stays "meta": null)
SELECT (e->>'seq')::int AS seq,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(e) k) AS keys,
       jsonb_typeof(e->'seq') AS seq_type, jsonb_typeof(e->'at') AS at_type,
       jsonb_typeof(e->'meta') AS meta_type
  FROM jsonb_array_elements(agentcache.get_context('mem-a')) e;
-- "at" is to_jsonb(created_at)
SELECT (e->>'seq')::int AS seq, e->'at' = to_jsonb(t.created_at) AS at_matches
  FROM jsonb_array_elements(agentcache.get_context('mem-a')) e
  JOIN agentcache.turns t ON t.session_id = 'mem-a' AND t.seq = (e->>'seq')::bigint
 ORDER BY 1;
-- the whole value equals the reference, in any TimeZone
SELECT agentcache.get_context('mem-a') = mem_ref('mem-a', 30) AS equals_reference;
SET TimeZone = 'America/Sao_Paulo';
SELECT agentcache.get_context('mem-a') = mem_ref('mem-a', 30) AS equals_reference_sao_paulo;
SET TimeZone = 'UTC';

-- a second read is served from memory: hits +1, misses unchanged
SELECT agentcache.get_context('mem-a') IS NOT NULL AS warmed;
SELECT * FROM mem_counters() \gset c_
SELECT agentcache.get_context('mem-a') = mem_ref('mem-a', 30) AS equals_reference;
SELECT hits - :c_hits AS hits_delta, misses - :c_misses AS misses_delta FROM mem_counters();

-- unknown session
SELECT agentcache.get_context('mem-nobody') AS unknown;
SELECT count(*) AS unknown_rows FROM agentcache.get_turns('mem-nobody');

-- ---------------------------------------------------------------- max_turns
SELECT e - 'at' AS turn FROM jsonb_array_elements(agentcache.get_context('mem-a', 2)) e;
SELECT agentcache.get_context('mem-a', 2) = mem_ref('mem-a', 2) AS two_newest;
SELECT agentcache.get_context('mem-a', 100) = mem_ref('mem-a', 100) AS more_than_exist;
-- NULL max_turns follows agentcache.context_turns
SET agentcache.context_turns = 3;
SELECT jsonb_path_query_array(agentcache.get_context('mem-a'), '$[*].seq') AS seqs_default;
SELECT jsonb_path_query_array(agentcache.get_context('mem-a', NULL), '$[*].seq') AS seqs_null;
SELECT jsonb_path_query_array(agentcache.get_context('mem-a', NULL, NULL), '$[*].seq') AS seqs_null_null;
SET agentcache.context_turns = 1;
SELECT jsonb_path_query_array(agentcache.get_context('mem-a'), '$[*].seq') AS seqs_default_1;
RESET agentcache.context_turns;
SELECT jsonb_path_query_array(agentcache.get_context('mem-a'), '$[*].seq') AS seqs_default_30;

-- max_turns above agentcache.session_turns (30): read from the table
SELECT count(agentcache.add_turn('mem-long', CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END,
                                 'turn ' || g)) AS added
  FROM generate_series(1, 40) g;
SELECT min(seq), max(seq), count(*) FROM agentcache.turns WHERE session_id = 'mem-long';
SELECT agentcache.warm_session('mem-long') AS cached_turns;
SELECT jsonb_array_length(agentcache.get_context('mem-long', 35)) AS n35,
       agentcache.get_context('mem-long', 35)->0->>'content' AS oldest,
       agentcache.get_context('mem-long', 35)->-1->>'content' AS newest,
       agentcache.get_context('mem-long', 35) = mem_ref('mem-long', 35) AS equals_reference;
SELECT jsonb_array_length(agentcache.get_context('mem-long', 40)) AS n40,
       agentcache.get_context('mem-long', 41) = mem_ref('mem-long', 41) AS all_41,
       agentcache.get_context('mem-long', 31) = mem_ref('mem-long', 31) AS newest_31,
       agentcache.get_context('mem-long', 30) = mem_ref('mem-long', 30) AS newest_30,
       agentcache.get_context('mem-long') = mem_ref('mem-long', 30) AS default_30,
       agentcache.get_context('mem-long', 5) = mem_ref('mem-long', 5) AS newest_5;
-- the cached newest 30 roll over as turns are added to the cached session
SELECT agentcache.add_turn('mem-long', 'user', 'turn 41') AS seq41,
       agentcache.add_turn('mem-long', 'assistant', 'turn 42') AS seq42;
SELECT * FROM mem_counters() \gset c_
SELECT agentcache.get_context('mem-long', 30) = mem_ref('mem-long', 30) AS rolled_30,
       agentcache.get_context('mem-long', 29) = mem_ref('mem-long', 29) AS rolled_29,
       agentcache.get_context('mem-long')->0->>'content' AS oldest_of_30;
SELECT hits - :c_hits AS hits_delta, misses - :c_misses AS misses_delta FROM mem_counters();
SELECT agentcache.get_context('mem-long', 42) = mem_ref('mem-long', 42) AS all_42,
       agentcache.get_context('mem-long', 32) = mem_ref('mem-long', 32) AS newest_32;
SET agentcache.context_turns = 35;
SELECT agentcache.get_context('mem-long') = mem_ref('mem-long', 35) AS default_35;
SELECT count(*) AS get_turns_default_35 FROM agentcache.get_turns('mem-long');
RESET agentcache.context_turns;

-- ---------------------------------------------------------------- get_turns
SELECT seq, role, content, meta, created_at = (SELECT created_at FROM agentcache.turns t
                                                WHERE t.session_id = 'mem-a' AND t.seq = g.seq) AS at_ok
  FROM agentcache.get_turns('mem-a') g;
SELECT seq, content FROM agentcache.get_turns('mem-a', 2);
SELECT seq, content FROM agentcache.get_turns('mem-long', 33) LIMIT 2;
SET agentcache.context_turns = 2;
SELECT seq, content FROM agentcache.get_turns('mem-a', NULL);
SELECT seq, content FROM agentcache.get_turns('mem-a');
RESET agentcache.context_turns;
-- the same turns as get_context
SELECT (SELECT jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content,
                                            'at', to_jsonb(created_at))
                         || CASE WHEN meta IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('meta', meta) END
                         ORDER BY seq)
          FROM agentcache.get_turns('mem-a')) = agentcache.get_context('mem-a') AS same_as_get_context;

-- ---------------------------------------------------------------- warm / end session
SELECT agentcache.end_session('mem-a') AS was_cached;
SELECT agentcache.end_session('mem-a') AS was_cached_again;
SELECT agentcache.end_session('mem-nobody-at-all') AS never_cached;
SELECT agentcache.warm_session('mem-a') AS warmed;
SELECT agentcache.warm_session('mem-a') AS warmed_again;
SELECT agentcache.end_session('mem-a') AS was_cached;
-- after end_session the history is intact and reloaded
SELECT agentcache.get_context('mem-a') = mem_ref('mem-a', 30) AS reloaded;
SELECT count(*) FROM agentcache.turns WHERE session_id = 'mem-a';
-- a session that is cached gets new turns at commit
SELECT agentcache.warm_session('mem-a') AS warmed;
SELECT agentcache.add_turn('mem-a', 'user', 'fifth') AS seq5;
SELECT * FROM mem_counters() \gset c_
SELECT agentcache.get_context('mem-a', 2) = mem_ref('mem-a', 2) AS sees_fifth;
SELECT hits - :c_hits AS hits_delta, misses - :c_misses AS misses_delta FROM mem_counters();
-- warm_session of an unknown session caches nothing
SELECT agentcache.warm_session('mem-nobody-2') AS warmed_unknown;

-- ---------------------------------------------------------------- forget_session
SELECT agentcache.forget_session('mem-a') AS deleted;
SELECT agentcache.get_context('mem-a') AS after_forget;
SELECT count(*) FROM agentcache.turns WHERE session_id = 'mem-a';
SELECT agentcache.forget_session('mem-a') AS deleted_again;
-- a forgotten session starts over
SELECT agentcache.add_turn('mem-a', 'user', 'new start') AS seq_after_forget;
SELECT e - 'at' AS turn FROM jsonb_array_elements(agentcache.get_context('mem-a')) e;
-- forget_session of a cached session drops the cached copy too
SELECT agentcache.warm_session('mem-a');
SELECT agentcache.forget_session('mem-a') AS deleted;
SELECT agentcache.end_session('mem-a') AS still_cached;
SELECT agentcache.get_context('mem-a') AS after_forget;

-- ---------------------------------------------------------------- transactions
-- the caller sees its own uncommitted turns; nothing remains after ROLLBACK
SELECT agentcache.add_turn('mem-tx', 'user', 'committed one');
SELECT agentcache.warm_session('mem-tx');
BEGIN;
SELECT agentcache.add_turn('mem-tx', 'assistant', 'uncommitted two');
SELECT agentcache.add_turn('mem-new-tx', 'user', 'uncommitted new session');
SELECT e - 'at' AS turn FROM jsonb_array_elements(agentcache.get_context('mem-tx')) e;
SELECT seq, content FROM agentcache.get_turns('mem-tx');
SELECT e - 'at' AS turn FROM jsonb_array_elements(agentcache.get_context('mem-new-tx')) e;
SELECT agentcache.warm_session('mem-new-tx') AS warm_in_tx;
ROLLBACK;
SELECT e - 'at' AS turn FROM jsonb_array_elements(agentcache.get_context('mem-tx')) e;
SELECT agentcache.get_context('mem-new-tx') AS rolled_back_session;
SELECT count(*) FROM agentcache.turns WHERE session_id IN ('mem-tx', 'mem-new-tx');

-- savepoint rollback of one add_turn keeps the others (cache warm before)
SELECT agentcache.warm_session('mem-tx');
BEGIN;
SELECT agentcache.add_turn('mem-tx', 'assistant', 'kept two') > 1 AS added;
SAVEPOINT sp;
SELECT agentcache.add_turn('mem-tx', 'user', 'rolled back three') > 1 AS added;
ROLLBACK TO SAVEPOINT sp;
SELECT agentcache.add_turn('mem-tx', 'user', 'kept three') > 1 AS added;
SAVEPOINT sp2;
SELECT agentcache.add_turn('mem-tx', 'user', 'released four') > 1 AS added;
RELEASE SAVEPOINT sp2;
COMMIT;
SELECT e->>'role' AS role, e->>'content' AS content
  FROM jsonb_array_elements(agentcache.get_context('mem-tx')) e;
SELECT agentcache.get_context('mem-tx') = mem_ref('mem-tx', 30) AS equals_reference;
-- seq strictly increasing
SELECT bool_and(s > p) AS increasing
  FROM (SELECT (e->>'seq')::bigint s, lag((e->>'seq')::bigint) OVER () p
          FROM jsonb_array_elements(agentcache.get_context('mem-tx')) e) x WHERE p IS NOT NULL;
-- the same from a cold load
SELECT agentcache.end_session('mem-tx');
SELECT agentcache.get_context('mem-tx') = mem_ref('mem-tx', 30) AS equals_reference_cold;

-- READ ONLY: reads work; writes raise 25006 and leave nothing
\set VERBOSITY sqlstate
BEGIN READ ONLY;
SELECT jsonb_array_length(agentcache.get_context('mem-tx')) AS n_cached;
SELECT agentcache.end_session('mem-tx') AS dropped;
SELECT jsonb_array_length(agentcache.get_context('mem-tx')) AS n_loaded_read_only;
SELECT count(*) FROM agentcache.get_turns('mem-tx');
SELECT jsonb_array_length(agentcache.get_context('mem-long', 35)) AS n_table_path;
SAVEPOINT a;
SELECT agentcache.add_turn('mem-tx', 'user', 'read only');
ROLLBACK TO SAVEPOINT a;
SELECT agentcache.forget_session('mem-tx');
ROLLBACK TO SAVEPOINT a;
SELECT agentcache.add_turn('mem-ro-new', 'user', 'read only');
ROLLBACK TO SAVEPOINT a;
COMMIT;
\set VERBOSITY default
SET default_transaction_read_only = on;
\set VERBOSITY sqlstate
SELECT agentcache.add_turn('mem-tx', 'user', 'read only');
SELECT agentcache.forget_session('mem-tx');
\set VERBOSITY default
RESET default_transaction_read_only;
SELECT count(*) FROM agentcache.turns WHERE session_id IN ('mem-tx', 'mem-ro-new');
SELECT agentcache.get_context('mem-tx') = mem_ref('mem-tx', 30) AS unchanged;

-- ---------------------------------------------------------------- meta forms
SELECT agentcache.add_turn('mem-meta', 'user', 'a', NULL) AS s1,
       agentcache.add_turn('mem-meta', 'user', 'b', 'null') AS s2,
       agentcache.add_turn('mem-meta', 'user', 'c', '"str"') AS s3,
       agentcache.add_turn('mem-meta', 'user', 'd', '[1, 2.5, true, null]') AS s4,
       agentcache.add_turn('mem-meta', 'user', 'e', '{"a": {"b": {"c": [{}]}}}') AS s5,
       agentcache.add_turn('mem-meta', 'user', '', '{}') AS s6;
SELECT count(*) AS meta_rows FROM agentcache.turns WHERE session_id = 'mem-meta';
SELECT e - 'at' AS turn FROM jsonb_array_elements(agentcache.get_context('mem-meta')) e;
SELECT agentcache.get_context('mem-meta') = mem_ref('mem-meta', 30) AS cached_equals_reference;
SELECT agentcache.get_context('mem-meta', 31) = mem_ref('mem-meta', 31) AS table_equals_reference;
SELECT seq, meta, meta IS NULL AS sql_null FROM agentcache.get_turns('mem-meta');

-- ---------------------------------------------------------------- cleanup
SELECT agentcache.forget_session(s) AS deleted
  FROM unnest(ARRAY['mem-a', 'mem-b', 'mem-long', 'mem-tx', 'mem-new-tx', 'mem-meta']) s;
SELECT count(*) AS rows_left FROM agentcache.turns WHERE session_id LIKE 'mem-%';
DROP FUNCTION mem_ref(text, int);
DROP FUNCTION mem_counters();
