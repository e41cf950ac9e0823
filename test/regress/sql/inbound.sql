--
-- inbound: inbound() and outbound(), the one-round-trip hot path: route from
-- the 'instances' map, dedup claim, the user turn on the first acquisition,
-- context; the assistant turn and the completion, atomically. SQLSTATEs and
-- their order, READ ONLY. Pids and timestamps are never printed.
--
SET TimeZone = 'UTC';


-- inbound()'s result without "at" and "seq" (compared separately)
CREATE FUNCTION hp(r jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('route', r->'route', 'dedup', r->'dedup',
           'context', coalesce((SELECT jsonb_agg(e - 'at' - 'seq' ORDER BY o)
                                  FROM jsonb_array_elements(r->'context') WITH ORDINALITY AS t(e, o)), '[]'))
$$;
-- the session's turns, oldest first: role:content
CREATE FUNCTION hp_turns(s text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(role || ':' || content, ' | ' ORDER BY seq), '') FROM agentcache.turns WHERE session_id = s
$$;
-- dedup_state() without pids and timestamps
CREATE FUNCTION dd(id text, OUT state text, OUT holder text, OUT attempts int, OUT error text)
  RETURNS SETOF record LANGUAGE sql AS $$
  SELECT s.state,
         CASE WHEN s.holder_pid IS NULL THEN 'none' WHEN s.holder_pid = pg_backend_pid() THEN 'me' ELSE 'other' END,
         s.attempts, s.error
    FROM agentcache.dedup_state(id) s
$$;
CREATE FUNCTION my_claims() RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM pg_locks
   WHERE locktype = 'advisory' AND objsubid = -21498 AND pid = pg_backend_pid() AND granted
$$;

-- ---------------------------------------------------------------- the shape
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace AND p.proname IN ('inbound', 'outbound')
 ORDER BY p.proname;

-- ---------------------------------------------------------------- no 'instances' map: route null
SELECT count(*) AS maps FROM agentcache.maps;
SELECT hp(agentcache.inbound('wa-1', 'hp-m1', 'hp-s1', 'hi there')) AS first;
SELECT jsonb_object_keys(agentcache.inbound('wa-1', 'hp-m1', 'hp-s1', 'hi there')) AS key ORDER BY 1;
-- the body is the last context turn, with its seq; the claim is held
SELECT r->'context'->-1->'seq' = to_jsonb((SELECT max(seq) FROM agentcache.turns WHERE session_id = 'hp-s1'))
       AS last_is_body,
       r->'context'->-1 ? 'at' AS has_at
  FROM agentcache.inbound('wa-1', 'hp-m1', 'hp-s1', 'hi there') r;
SELECT * FROM dd('hp-m1');
SELECT my_claims() AS claims;
-- the holder's repeated inbound (three above) added the body once
SELECT hp_turns('hp-s1') AS turns;
-- no fingerprint is stored: inbound does not use them
SELECT fingerprint IS NULL AS no_fingerprint FROM agentcache.dedup WHERE message_id = 'hp-m1';

-- ---------------------------------------------------------------- outbound: the reply and the completion
SELECT agentcache.outbound('hp-m1', 'hp-s1', 'hello!') AS reply_seq \gset
SELECT :reply_seq = (SELECT max(seq) FROM agentcache.turns WHERE session_id = 'hp-s1') AS returns_seq,
       :reply_seq = (SELECT seq FROM agentcache.turns WHERE session_id = 'hp-s1' AND role = 'assistant') AS is_the_reply;
SELECT * FROM dd('hp-m1');
SELECT my_claims() AS claims;
-- the next inbound of the same message: duplicate, context ends with the reply, nothing added
SELECT hp(agentcache.inbound('wa-1', 'hp-m1', 'hp-s1', 'hi there')) AS duplicate;
SELECT hp_turns('hp-s1') AS turns;
-- outbound by a non-holder: 55000, no turn
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.outbound('hp-m1', 'hp-s1', 'again?')$$),
  ($$SELECT agentcache.outbound('hp-unknown', 'hp-s1', 'who?')$$)
) v(q);
SELECT agentcache.outbound('hp-unknown', 'hp-s1', 'who?');
SELECT hp_turns('hp-s1') AS turns;
SELECT count(*) AS unknown_rows FROM agentcache.dedup WHERE message_id = 'hp-unknown';
-- meta is stored with the reply
SELECT hp(agentcache.inbound('wa-1', 'hp-m2', 'hp-s1', 'and now?')) AS second_message;
SELECT agentcache.outbound('hp-m2', 'hp-s1', 'now this', '{"model": "m", "tokens": [1, 2]}') > 0 AS replied;
SELECT hp(agentcache.inbound('wa-1', 'hp-m2', 'hp-s1', 'and now?')) AS duplicate;
-- the same words under a new message_id are a new message (no fingerprints)
SELECT hp(agentcache.inbound('wa-1', 'hp-m3', 'hp-s1', 'and now?'))->'dedup' AS same_words;
SELECT agentcache.outbound('hp-m3', 'hp-s1', 'again') > 0 AS replied;
SELECT hp_turns('hp-s1') AS turns;

-- ---------------------------------------------------------------- fail and retry
SELECT hp(agentcache.inbound('wa-1', 'hp-f1', 'hp-s2', 'question')) AS first;
SELECT agentcache.dedup_fail('hp-f1', 'llm timeout') AS failed;
SELECT * FROM dd('hp-f1');
-- the retry acquires (attempts 2) and does not add the body again
SELECT hp(agentcache.inbound('wa-1', 'hp-f1', 'hp-s2', 'question')) AS retry;
SELECT * FROM dd('hp-f1');
SELECT hp(agentcache.inbound('wa-1', 'hp-f1', 'hp-s2', 'question')) AS retry_again;
SELECT agentcache.outbound('hp-f1', 'hp-s2', 'answer') > 0 AS replied;
SELECT * FROM dd('hp-f1');
SELECT hp_turns('hp-s2') AS turns;
-- a holder that died (simulated: a processing row, no lock): reclaimed with
-- attempts 2, the body is not added again
INSERT INTO agentcache.dedup (message_id, state, holder_pid, attempts) VALUES ('hp-dead', 'processing', 0, 1);
SELECT hp(agentcache.inbound('wa-1', 'hp-dead', 'hp-s2', 'lost message')) AS reclaimed;
SELECT * FROM dd('hp-dead');
SELECT agentcache.outbound('hp-dead', 'hp-s2', 'recovered') > 0 AS replied;
SELECT hp_turns('hp-s2') AS turns;
-- a message completed through dedup_complete is a duplicate for inbound too
SELECT agentcache.dedup_begin('hp-plain') AS acquired;
SELECT agentcache.dedup_complete('hp-plain') AS completed;
SELECT hp(agentcache.inbound('wa-1', 'hp-plain', 'hp-s2', 'ignored'))->'dedup' AS dedup;
SELECT hp_turns('hp-s2') AS turns;

-- ---------------------------------------------------------------- transactions
-- outbound rolled back: neither the turn nor the completion happened
SELECT hp(agentcache.inbound('wa-1', 'hp-t1', 'hp-s3', 'ping')) AS first;
BEGIN;
SELECT agentcache.outbound('hp-t1', 'hp-s3', 'pong') > 0 AS replied;
SELECT hp(agentcache.inbound('wa-1', 'hp-t1', 'hp-s3', 'ping')) AS inside;
SELECT state FROM dd('hp-t1');
ROLLBACK;
SELECT * FROM dd('hp-t1');
SELECT my_claims() AS claims;
SELECT hp_turns('hp-s3') AS turns;
SELECT jsonb_array_length(agentcache.get_context('hp-s3')) AS context_turns;
-- then outbound commits
SELECT agentcache.outbound('hp-t1', 'hp-s3', 'pong') > 0 AS replied;
SELECT * FROM dd('hp-t1');
SELECT hp_turns('hp-s3') AS turns;
-- inbound rolled back: no turn, no row, no claim; the next inbound is a first acquisition
BEGIN;
SELECT hp(agentcache.inbound('wa-1', 'hp-t2', 'hp-s3', 'rolled back')) AS inside;
ROLLBACK;
SELECT count(*) AS rows_t2 FROM agentcache.dedup WHERE message_id = 'hp-t2';
SELECT my_claims() AS claims;
SELECT hp_turns('hp-s3') AS turns;
SELECT hp(agentcache.inbound('wa-1', 'hp-t2', 'hp-s3', 'rolled back')) AS again;
SELECT * FROM dd('hp-t2');
-- inbound and outbound in one transaction
BEGIN;
SELECT hp(agentcache.inbound('wa-1', 'hp-t3', 'hp-s4', 'one trip'))->'dedup' AS dedup;
SELECT agentcache.outbound('hp-t3', 'hp-s4', 'done') > 0 AS replied;
COMMIT;
SELECT * FROM dd('hp-t3');
SELECT hp_turns('hp-s4') AS turns;
SELECT agentcache.outbound('hp-t2', 'hp-s3', 'late reply') > 0 AS replied;
SELECT my_claims() AS claims;

-- ---------------------------------------------------------------- max_turns
SELECT count(agentcache.add_turn('hp-s5', 'user', 'old ' || g)) AS added FROM generate_series(1, 5) g;
SELECT hp(agentcache.inbound('wa-1', 'hp-mt', 'hp-s5', 'newest', 2)) AS two;
SELECT jsonb_array_length(agentcache.inbound('wa-1', 'hp-mt', 'hp-s5', 'newest')->'context') AS default_30,
       jsonb_array_length(agentcache.inbound('wa-1', 'hp-mt', 'hp-s5', 'newest', NULL)->'context') AS null_30,
       jsonb_array_length(agentcache.inbound('wa-1', 'hp-mt', 'hp-s5', 'newest', 100)->'context') AS max_100;
SET agentcache.context_turns = 3;
SELECT hp(agentcache.inbound('wa-1', 'hp-mt', 'hp-s5', 'newest')) AS context_turns_3;
RESET agentcache.context_turns;
-- the same as get_context
SELECT agentcache.inbound('wa-1', 'hp-mt', 'hp-s5', 'newest', 4)->'context' = agentcache.get_context('hp-s5', 4)
       AS same_as_get_context;
SELECT agentcache.outbound('hp-mt', 'hp-s5', 'ok') > 0 AS replied;
SELECT hp(agentcache.inbound('wa-1', 'hp-mt', 'hp-s5', 'newest', 1)) AS duplicate_one;

-- ---------------------------------------------------------------- route from the 'instances' map
CREATE TABLE hp_instances (instance text PRIMARY KEY, clinic jsonb NOT NULL);
INSERT INTO hp_instances VALUES ('wa-1', '{"clinic": "north", "tenant": 7}'), ('wa-2', '{"clinic": "south", "tenant": 8}');
SELECT agentcache.define_map('instances', 'SELECT instance, clinic FROM public.hp_instances');
SELECT hp(agentcache.inbound('wa-1', 'hp-r1', 'hp-s6', 'routed')) AS routed;
SELECT agentcache.inbound('wa-2', 'hp-r1', 'hp-s6', 'routed')->'route' AS wa2,
       agentcache.inbound('wa-unknown', 'hp-r1', 'hp-s6', 'routed')->'route' AS unknown_instance,
       agentcache.inbound('', 'hp-r1', 'hp-s6', 'routed')->'route' AS empty_instance;
SELECT agentcache.inbound('wa-1', 'hp-r1', 'hp-s6', 'routed')->'route' = agentcache.resolve_instance('wa-1') AS same_as_resolve;
-- a duplicate still gets its route
SELECT agentcache.outbound('hp-r1', 'hp-s6', 'routed reply') > 0 AS replied;
SELECT hp(agentcache.inbound('wa-2', 'hp-r1', 'hp-s6', 'routed')) AS duplicate_routed;
SELECT agentcache.drop_map('instances') AS dropped;
SELECT agentcache.inbound('wa-1', 'hp-r1', 'hp-s6', 'routed')->'route' AS after_drop;
DROP TABLE hp_instances;

-- ---------------------------------------------------------------- NULLs: 22004
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.inbound(NULL, 'hp-n', 'hp-sn', 'b')$$),
  ($$SELECT agentcache.inbound('wa-1', NULL, 'hp-sn', 'b')$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-n', NULL, 'b')$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-n', 'hp-sn', NULL)$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-n', 'hp-sn', NULL, 5)$$),
  ($$SELECT agentcache.outbound(NULL, 'hp-sn', 'r')$$),
  ($$SELECT agentcache.outbound('hp-n', NULL, 'r')$$),
  ($$SELECT agentcache.outbound('hp-n', 'hp-sn', NULL)$$),
  ($$SELECT agentcache.outbound('hp-n', 'hp-sn', NULL, '{}')$$)
) v(q);
-- NULL max_turns and meta have a meaning
SELECT agentcache.inbound('wa-1', 'hp-n', 'hp-sn', 'b', NULL)->>'dedup' AS max_turns_null;
SELECT agentcache.outbound('hp-n', 'hp-sn', 'r', NULL) > 0 AS meta_null;
SELECT e - 'at' - 'seq' AS turn FROM jsonb_array_elements(agentcache.get_context('hp-sn')) e;
-- nothing was written by the failed calls
SELECT hp_turns('hp-sn') AS turns;

-- ---------------------------------------------------------------- argument values: 54000, 22023
SET agentcache.max_turn_bytes = '1kB';
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.inbound('wa-1', repeat('m', 257), 'hp-sv', 'b')$$),
  ($$SELECT agentcache.inbound('wa-1', repeat('é', 129), 'hp-sv', 'b')$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-v', repeat('s', 257), 'b')$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-v', 'hp-sv', repeat('b', 1025))$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-v', 'hp-sv', 'b', 0)$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-v', 'hp-sv', 'b', -1)$$),
  ($$SELECT agentcache.outbound(repeat('m', 257), 'hp-sv', 'r')$$),
  ($$SELECT agentcache.outbound('hp-v', repeat('s', 257), 'r')$$),
  ($$SELECT agentcache.outbound('hp-v', 'hp-sv', repeat('r', 1025))$$)
) v(q);
-- the limits themselves are accepted
SELECT agentcache.inbound('wa-1', repeat('m', 256), repeat('s', 256), repeat('b', 1024))->>'dedup' AS at_limits;
SELECT agentcache.outbound(repeat('m', 256), repeat('s', 256), repeat('r', 1024)) > 0 AS at_limits;
RESET agentcache.max_turn_bytes;
SELECT count(*) AS rows_v FROM agentcache.dedup WHERE message_id = 'hp-v';
SELECT hp_turns('hp-sv') AS turns;
SELECT agentcache.forget_session(repeat('s', 256)) AS forgotten;

-- ---------------------------------------------------------------- error order and READ ONLY: 25006
-- 22004 before 54000/22023 before 25006 before 55000 (claim not held)
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.inbound(NULL, repeat('m', 257), 'hp-so', 'b', 0)$$),
  ($$SELECT agentcache.inbound('wa-1', repeat('m', 257), 'hp-so', 'b', 0)$$),
  ($$SELECT agentcache.outbound(NULL, repeat('s', 257), 'r')$$)
) v(q);
SELECT hp(agentcache.inbound('wa-1', 'hp-ro-held', 'hp-so', 'held')) AS held;
BEGIN READ ONLY;
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.inbound('wa-1', NULL, 'hp-so', 'b')$$),
  ($$SELECT agentcache.inbound('wa-1', repeat('m', 257), 'hp-so', 'b')$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-ro', 'hp-so', 'b', 0)$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-ro', 'hp-so', 'b')$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-m1', 'hp-s1', 'hi there')$$),
  ($$SELECT agentcache.inbound('wa-1', 'hp-ro-held', 'hp-so', 'held')$$),
  ($$SELECT agentcache.outbound(NULL, 'hp-so', 'r')$$),
  ($$SELECT agentcache.outbound(repeat('m', 257), 'hp-so', 'r')$$),
  ($$SELECT agentcache.outbound('hp-ro-held', 'hp-so', 'r')$$),
  ($$SELECT agentcache.outbound('hp-ro', 'hp-so', 'r')$$)
) v(q);
-- reads still work
SELECT jsonb_array_length(agentcache.get_context('hp-so')) AS read_only_read;
ROLLBACK;
-- nothing was left behind
SELECT count(*) AS rows_ro FROM agentcache.dedup WHERE message_id = 'hp-ro';
SELECT * FROM dd('hp-ro-held');
SELECT hp_turns('hp-so') AS turns;
SELECT agentcache.outbound('hp-ro-held', 'hp-so', 'released') > 0 AS replied;
SELECT my_claims() AS claims;

-- ---------------------------------------------------------------- stats(): inbound counts as dedup_begin
CREATE TABLE hp_base AS SELECT * FROM agentcache.stats() WHERE tier = 'dedup';
SELECT agentcache.inbound('wa-1', 'hp-st', 'hp-st', 'x')->>'dedup' AS a,
       agentcache.inbound('wa-1', 'hp-st', 'hp-st', 'x')->>'dedup' AS a_again;
SELECT agentcache.outbound('hp-st', 'hp-st', 'y') > 0 AS replied;
SELECT agentcache.inbound('wa-1', 'hp-st', 'hp-st', 'x')->>'dedup' AS d;
SELECT s.misses - b.misses AS acquired, s.hits - b.hits AS duplicate, s.stale_hits - b.stale_hits AS in_progress
  FROM agentcache.stats() s, hp_base b WHERE s.tier = 'dedup';

-- ---------------------------------------------------------------- clean up
SELECT my_claims() AS claims;
SELECT count(agentcache.dedup_release(message_id)) > 0 AS released
  FROM agentcache.dedup WHERE message_id LIKE 'hp-%' OR message_id = repeat('m', 256);
SELECT sum(agentcache.forget_session(s)) > 0 AS forgotten
  FROM (SELECT DISTINCT session_id FROM agentcache.turns WHERE session_id LIKE 'hp-%') t(s);
SELECT count(*) AS dedup_rows FROM agentcache.dedup;
SELECT count(*) AS turn_rows FROM agentcache.turns WHERE session_id LIKE 'hp-%';
DROP TABLE hp_base;
DROP FUNCTION hp(jsonb), hp_turns(text), dd(text), my_claims();
