--
-- dedup: message deduplication (agentcache.dedup, claims in the private
-- advisory lock space 0xAC06): dedup_begin, dedup_complete, dedup_fail,
-- dedup_state, dedup_release; windows, fingerprints, claims following the
-- transaction, SQLSTATEs and their order, READ ONLY, privileges, and the dedup
-- row of stats() / health(). Pids and timestamps are only compared, never
-- printed. 'in_progress' needs a second session: see the isolation specs.
--
SET TimeZone = 'UTC';


-- dedup_state() without pids and timestamps: holder is 'me', 'other' or 'none'.
CREATE FUNCTION dd(id text, OUT state text, OUT holder text, OUT attempts int, OUT has_fingerprint boolean,
                   OUT error text) RETURNS SETOF record LANGUAGE sql AS $$
  SELECT s.state,
         CASE WHEN s.holder_pid IS NULL THEN 'none' WHEN s.holder_pid = pg_backend_pid() THEN 'me' ELSE 'other' END,
         s.attempts, s.fingerprint IS NOT NULL, s.error
    FROM agentcache.dedup_state(id) s
$$;

-- Claims this backend holds: advisory locks with objsubid (0xAC06)::int2 = -21498.
CREATE FUNCTION my_claims() RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM pg_locks
   WHERE locktype = 'advisory' AND objsubid = -21498 AND pid = pg_backend_pid() AND granted
$$;
SELECT (x'AC06'::int - 65536)::int2 AS claim_space_objsubid;

-- stats() deltas of the dedup row: dd_mark() records, dd_delta() shows the change.
CREATE TABLE dd_base AS SELECT * FROM agentcache.stats() WHERE false;
CREATE FUNCTION dd_mark() RETURNS void LANGUAGE sql AS $$
  DELETE FROM dd_base;
  INSERT INTO dd_base SELECT * FROM agentcache.stats() WHERE tier = 'dedup';
$$;
CREATE FUNCTION dd_delta(OUT acquired bigint, OUT duplicate bigint, OUT in_progress bigint) LANGUAGE sql AS $$
  SELECT s.misses - b.misses, s.hits - b.hits, s.stale_hits - b.stale_hits
    FROM agentcache.stats() s JOIN dd_base b ON b.tier = s.tier AND b.name = s.name
   WHERE s.tier = 'dedup'
$$;

-- ---------------------------------------------------------------- the shape
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace
   AND p.proname IN ('dedup_begin', 'dedup_complete', 'dedup_fail', 'dedup_state', 'dedup_release')
 ORDER BY p.proname;
-- a logged table
SELECT relname, relpersistence FROM pg_class
 WHERE relnamespace = 'agentcache'::regnamespace AND relname = 'dedup';
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'agentcache' AND table_name = 'dedup'
   AND column_name IN ('message_id', 'fingerprint', 'state', 'holder_pid', 'attempts', 'error',
                       'updated_at', 'expires_at')
 ORDER BY ordinal_position;
SELECT a.attname AS primary_key
  FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
 WHERE i.indrelid = 'agentcache.dedup'::regclass AND i.indisprimary;
-- the stats() row
SELECT tier, name FROM agentcache.stats() WHERE tier = 'dedup';
SELECT dd_mark();

-- ---------------------------------------------------------------- acquired, repeated, completed, duplicate
SELECT count(*) AS unknown_rows FROM agentcache.dedup_state('dd-1');
SELECT agentcache.dedup_begin('dd-1') AS first;
SELECT * FROM dd('dd-1');
SELECT my_claims() AS claims;
-- the holder asks again: acquired, attempts unchanged, no second lock stacked
SELECT agentcache.dedup_begin('dd-1') AS again, agentcache.dedup_begin('dd-1') AS and_again;
SELECT * FROM dd('dd-1');
SELECT my_claims() AS claims;
SELECT * FROM dd_delta();
SELECT agentcache.dedup_complete('dd-1') AS completed;
-- one completion released the claim entirely (nothing was stacked)
SELECT my_claims() AS claims;
SELECT * FROM dd('dd-1');
SELECT updated_at <= now() AS updated_at_set FROM agentcache.dedup_state('dd-1');
-- within the window: duplicate, state unchanged, no claim taken
SELECT agentcache.dedup_begin('dd-1') AS after_complete, agentcache.dedup_begin('dd-1', 'conv', 'body') AS with_body;
SELECT * FROM dd('dd-1');
SELECT my_claims() AS claims;
-- the window is the GUC's (10min by default), fixed at completion
SHOW agentcache.dedup_window;
SELECT expires_at > clock_timestamp() + interval '9 minutes' AND expires_at <= clock_timestamp() + interval '10 minutes'
       AS ten_minute_window
  FROM agentcache.dedup WHERE message_id = 'dd-1';
-- a later dedup_begin with its own window does not change it: still a duplicate
SELECT agentcache.dedup_begin('dd-1', NULL, NULL, '1 microsecond') AS tiny_within;
SELECT * FROM dd_delta();

-- complete / fail by a non-holder: 55000, nothing changes
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.dedup_complete('dd-1')$$),
  ($$SELECT agentcache.dedup_fail('dd-1')$$),
  ($$SELECT agentcache.dedup_fail('dd-1', 'boom')$$),
  ($$SELECT agentcache.dedup_complete('dd-unknown')$$),
  ($$SELECT agentcache.dedup_fail('dd-unknown', 'boom')$$)
) v(q);
-- the message (default verbosity)
SELECT agentcache.dedup_complete('dd-unknown');
SELECT * FROM dd('dd-1');
SELECT count(*) AS unknown_rows FROM agentcache.dedup WHERE message_id = 'dd-unknown';

-- ---------------------------------------------------------------- fail and retry
SELECT dd_mark();
SELECT agentcache.dedup_begin('dd-2') AS first;
SELECT agentcache.dedup_fail('dd-2', 'llm timeout') AS failed;
SELECT * FROM dd('dd-2');
SELECT my_claims() AS claims;
-- a later dedup_begin acquires it again; attempts counts up
SELECT agentcache.dedup_begin('dd-2') AS retry;
SELECT * FROM dd('dd-2');
SELECT agentcache.dedup_begin('dd-2') AS retry_again;
SELECT * FROM dd('dd-2');
-- NULL error is allowed
SELECT agentcache.dedup_fail('dd-2', NULL) AS failed_null;
SELECT * FROM dd('dd-2');
SELECT agentcache.dedup_begin('dd-2') AS third;
SELECT agentcache.dedup_fail('dd-2') AS failed_default;
SELECT * FROM dd('dd-2');
SELECT agentcache.dedup_begin('dd-2') AS fourth;
SELECT agentcache.dedup_complete('dd-2') AS completed;
SELECT * FROM dd('dd-2');
SELECT agentcache.dedup_begin('dd-2') AS after_complete;
SELECT my_claims() AS claims;
SELECT * FROM dd_delta();

-- ---------------------------------------------------------------- the window
-- within given to the acquiring dedup_begin is stored with the claim and used
-- at completion, whatever the GUC is then
SELECT agentcache.dedup_begin('dd-w2h', NULL, NULL, '2 hours') AS acquired;
SET agentcache.dedup_window = '1s';
SELECT agentcache.dedup_complete('dd-w2h') AS completed;
RESET agentcache.dedup_window;
SELECT expires_at > clock_timestamp() + interval '119 minutes' AND expires_at <= clock_timestamp() + interval '2 hours'
       AS two_hour_window
  FROM agentcache.dedup WHERE message_id = 'dd-w2h';
-- without within: the GUC's value at completion (not at dedup_begin)
SET agentcache.dedup_window = '1s';
SELECT agentcache.dedup_begin('dd-wguc') AS acquired;
SET agentcache.dedup_window = '3h';
SELECT agentcache.dedup_complete('dd-wguc') AS completed;
RESET agentcache.dedup_window;
SELECT expires_at > clock_timestamp() + interval '179 minutes' AND expires_at <= clock_timestamp() + interval '3 hours'
       AS three_hour_window
  FROM agentcache.dedup WHERE message_id = 'dd-wguc';
-- failed rows get a window too
SELECT agentcache.dedup_begin('dd-wfail', NULL, NULL, '1 hour') AS acquired;
SELECT agentcache.dedup_fail('dd-wfail', 'x') AS failed;
SELECT expires_at > clock_timestamp() + interval '59 minutes' AND expires_at <= clock_timestamp() + interval '1 hour'
       AS one_hour_window
  FROM agentcache.dedup WHERE message_id = 'dd-wfail';

-- a one-second window passes: no row in dedup_state, and the next dedup_begin
-- acquires it afresh (attempts 1) -- the same for fingerprints
SELECT agentcache.dedup_begin('dd-w1', NULL, NULL, '1 second') AS acquired;
SELECT agentcache.dedup_complete('dd-w1') AS completed;
SELECT agentcache.dedup_begin('dd-w1f', 'conv-w', 'same words', '1 second') AS acquired;
SELECT agentcache.dedup_complete('dd-w1f') AS completed;
SELECT agentcache.dedup_begin('dd-w1fail', NULL, NULL, '1 second') AS acquired;
SELECT agentcache.dedup_begin('dd-w1fail', NULL, NULL, '1 second') AS again;
SELECT agentcache.dedup_fail('dd-w1fail', 'x') AS failed;
SELECT agentcache.dedup_begin('dd-w1fail', NULL, NULL, '1 second') AS retry;
SELECT agentcache.dedup_fail('dd-w1fail', 'y') AS failed;
SELECT * FROM dd('dd-w1fail');
SELECT agentcache.dedup_begin('dd-w1') AS inside_window,
       agentcache.dedup_begin('dd-w1f-other', 'conv-w', 'same words') AS fingerprint_inside_window;
SELECT pg_sleep(1.1);
SELECT count(*) AS past_window_rows FROM agentcache.dedup_state('dd-w1');
SELECT count(*) AS past_window_rows FROM agentcache.dedup_state('dd-w1fail');
SELECT agentcache.dedup_begin('dd-w1') AS past_window;
SELECT * FROM dd('dd-w1');
SELECT agentcache.dedup_begin('dd-w1fail') AS past_window;
SELECT * FROM dd('dd-w1fail');
SELECT agentcache.dedup_begin('dd-w1f-other', 'conv-w', 'same words') AS fingerprint_past_window;
SELECT * FROM dd('dd-w1f-other');
SELECT agentcache.dedup_complete(id) AS completed FROM unnest(ARRAY['dd-w1', 'dd-w1fail', 'dd-w1f-other']) id;
-- no row stays past its window (the worker would sweep it at any moment)
SELECT agentcache.dedup_release('dd-w1f') AS released;
SELECT my_claims() AS claims;

-- ---------------------------------------------------------------- fingerprints
SELECT dd_mark();
SELECT agentcache.dedup_begin('fp-1', 'conv-A', 'hello') AS acquired;
SELECT * FROM dd('fp-1');
SELECT fingerprint ~ '^[0-9a-f]{64}$' AS sha256_hex FROM agentcache.dedup_state('fp-1');
SELECT agentcache.dedup_complete('fp-1') AS completed;
-- the same (conversation, body) under another message_id: duplicate, no row, no claim
SELECT agentcache.dedup_begin('fp-2', 'conv-A', 'hello') AS same_fingerprint;
SELECT count(*) AS rows_fp2 FROM agentcache.dedup WHERE message_id = 'fp-2';
SELECT count(*) AS state_fp2 FROM agentcache.dedup_state('fp-2');
SELECT my_claims() AS claims;
-- another conversation or another body is another fingerprint
SELECT agentcache.dedup_begin('fp-3', 'conv-B', 'hello') AS other_conversation,
       agentcache.dedup_begin('fp-4', 'conv-A', 'hello!') AS other_body,
       agentcache.dedup_begin('fp-5', 'conv-a', 'hello') AS case_matters;
-- unambiguous encoding: ('ab', 'c') is not ('a', 'bc'), ('', 'x') is not ('x', '')
SELECT agentcache.dedup_begin('fp-ab', 'ab', 'c') AS ab_c;
SELECT agentcache.dedup_complete('fp-ab') AS completed;
SELECT agentcache.dedup_begin('fp-a', 'a', 'bc') AS a_bc;
SELECT agentcache.dedup_begin('fp-empty1', '', 'x') AS empty_x;
SELECT agentcache.dedup_complete('fp-empty1') AS completed;
SELECT agentcache.dedup_begin('fp-empty2', 'x', '') AS x_empty;
SELECT count(DISTINCT fingerprint) AS distinct_fingerprints
  FROM agentcache.dedup WHERE message_id IN ('fp-ab', 'fp-a', 'fp-empty1', 'fp-empty2');
-- a fingerprint only when both conversation_id and body are given
SELECT agentcache.dedup_begin('fp-body', NULL, 'hello') AS only_body,
       agentcache.dedup_begin('fp-conv', 'conv-A', NULL) AS only_conversation,
       agentcache.dedup_begin('fp-none') AS neither;
SELECT message_id, fingerprint IS NULL AS no_fingerprint FROM agentcache.dedup
 WHERE message_id IN ('fp-body', 'fp-conv', 'fp-none') ORDER BY message_id;
-- a failed message's fingerprint is no duplicate
SELECT agentcache.dedup_begin('fp-failed', 'conv-F', 'retry me') AS acquired;
SELECT agentcache.dedup_fail('fp-failed', 'x') AS failed;
SELECT agentcache.dedup_begin('fp-failed-2', 'conv-F', 'retry me') AS after_failed;
SELECT agentcache.dedup_complete('fp-failed-2') AS completed;
SELECT agentcache.dedup_begin('fp-failed-3', 'conv-F', 'retry me') AS after_completed;
-- a processing row whose holder is gone (simulated: its fingerprint copied
-- from a failed message, no lock) is no duplicate; its own dedup_begin
-- reclaims it and attempts counts up
SELECT agentcache.dedup_begin('fp-orphan-src', 'conv-D', 'orphan') AS acquired;
SELECT agentcache.dedup_fail('fp-orphan-src') AS failed;
INSERT INTO agentcache.dedup (message_id, fingerprint, state, holder_pid, attempts)
SELECT 'fp-dead', fingerprint, 'processing', 0, 1 FROM agentcache.dedup WHERE message_id = 'fp-orphan-src';
SELECT * FROM dd('fp-dead');
SELECT agentcache.dedup_begin('fp-dead-2', 'conv-D', 'orphan') AS fingerprint_of_dead_holder;
SELECT agentcache.dedup_begin('fp-dead') AS reclaimed;
SELECT * FROM dd('fp-dead');
-- a fingerprint match with a message still processing (held by a live backend,
-- here this one) gives in_progress and creates no row
SELECT agentcache.dedup_begin('fp-live', 'conv-L', 'in flight') AS acquired;
SELECT agentcache.dedup_begin('fp-live-2', 'conv-L', 'in flight') AS fingerprint_processing;
SELECT count(*) AS rows_live2 FROM agentcache.dedup WHERE message_id = 'fp-live-2';
-- the message itself is not its own fingerprint duplicate
SELECT agentcache.dedup_begin('fp-live', 'conv-L', 'in flight') AS holder_again;
SELECT * FROM dd_delta();
SELECT count(agentcache.dedup_complete(message_id)) AS completed FROM agentcache.dedup
 WHERE message_id LIKE 'fp-%' AND state = 'processing' AND holder_pid = pg_backend_pid();
SELECT my_claims() AS claims;

-- ---------------------------------------------------------------- claims follow the transaction
-- dedup_begin rolled back: nothing of the claim remains
BEGIN;
SELECT agentcache.dedup_begin('tx-1') AS acquired;
SELECT * FROM dd('tx-1');
SELECT my_claims() AS claims_inside;
ROLLBACK;
SELECT count(*) AS state_rows FROM agentcache.dedup_state('tx-1');
SELECT count(*) AS table_rows FROM agentcache.dedup WHERE message_id = 'tx-1';
SELECT my_claims() AS claims;
SELECT agentcache.dedup_begin('tx-1') AS acquired_again;
SELECT * FROM dd('tx-1');
-- dedup_complete rolled back: still held, still processing
BEGIN;
SELECT agentcache.dedup_complete('tx-1') AS completed;
SELECT * FROM dd('tx-1');
-- the caller's own completion is visible to it at once
SELECT agentcache.dedup_begin('tx-1') AS own_completion_seen;
ROLLBACK;
SELECT * FROM dd('tx-1');
SELECT my_claims() AS claims;
-- dedup_fail rolled back: the same
BEGIN;
SELECT agentcache.dedup_fail('tx-1', 'rolled back') AS failed;
ROLLBACK;
SELECT * FROM dd('tx-1');
SELECT my_claims() AS claims;
-- an error aborts the transaction: the same
BEGIN;
SELECT agentcache.dedup_complete('tx-1') AS completed;
SELECT 1 / 0;
ROLLBACK;
SELECT * FROM dd('tx-1');
SELECT my_claims() AS claims;
-- then complete and commit: completed, released
BEGIN;
SELECT agentcache.dedup_complete('tx-1') AS completed;
SELECT my_claims() AS claims_until_commit;
COMMIT;
SELECT * FROM dd('tx-1');
SELECT my_claims() AS claims;
-- begin and complete in one transaction
BEGIN;
SELECT agentcache.dedup_begin('tx-2') AS acquired;
SELECT agentcache.dedup_complete('tx-2') AS completed;
COMMIT;
SELECT * FROM dd('tx-2');
SELECT my_claims() AS claims;
BEGIN;
SELECT agentcache.dedup_begin('tx-3') AS acquired;
SELECT agentcache.dedup_complete('tx-3') AS completed;
ROLLBACK;
SELECT count(*) AS state_rows FROM agentcache.dedup_state('tx-3');
SELECT my_claims() AS claims;
-- a claim taken in an earlier transaction survives a later rollback that
-- asked for it again
SELECT agentcache.dedup_begin('tx-4') AS acquired;
BEGIN;
SELECT agentcache.dedup_begin('tx-4') AS holder_again;
ROLLBACK;
SELECT * FROM dd('tx-4');
SELECT my_claims() AS claims;
-- duplicates answered inside a transaction that rolls back: no claim, no warning
BEGIN;
SELECT agentcache.dedup_begin('dd-1') AS duplicate_by_id,
       agentcache.dedup_begin('tx-fp', 'conv-A', 'hello') AS duplicate_by_fingerprint;
ROLLBACK;
SELECT my_claims() AS claims_tx4_only;
-- dedup_fail then dedup_begin in one transaction: acquired again, and still
-- held after the commit
BEGIN;
SELECT agentcache.dedup_fail('tx-4', 'first try') AS failed;
SELECT agentcache.dedup_begin('tx-4') AS retry_same_transaction;
COMMIT;
SELECT * FROM dd('tx-4');
SELECT my_claims() AS claims;
SELECT agentcache.dedup_complete('tx-4') AS completed;
SELECT * FROM dd('tx-4');

-- dedup_complete twice in one transaction (the claim is only released at
-- commit): whatever the second call answers, no warning, completed, released
SELECT agentcache.dedup_begin('tx-5') AS acquired;
BEGIN;
SELECT agentcache.dedup_complete('tx-5') AS completed;
SELECT left(sqlstate_of($$SELECT agentcache.dedup_complete('tx-5')$$), 5) IN ('ok: ', '55000') AS second_complete;
COMMIT;
SELECT * FROM dd('tx-5');
SELECT my_claims() AS claims;

-- savepoints
BEGIN;
SAVEPOINT s;
SELECT agentcache.dedup_begin('sp-1') AS acquired;
ROLLBACK TO SAVEPOINT s;
SELECT my_claims() AS claims_after_rollback_to;
SELECT count(*) AS state_rows FROM agentcache.dedup_state('sp-1');
SAVEPOINT s2;
SELECT agentcache.dedup_begin('sp-2') AS acquired;
RELEASE SAVEPOINT s2;
COMMIT;
SELECT count(*) AS sp1_rows FROM agentcache.dedup_state('sp-1');
SELECT * FROM dd('sp-2');
SELECT my_claims() AS claims;
BEGIN;
SAVEPOINT s;
SELECT agentcache.dedup_begin('sp-3') AS acquired;
RELEASE SAVEPOINT s;
ROLLBACK;
SELECT count(*) AS sp3_rows FROM agentcache.dedup_state('sp-3');
SELECT my_claims() AS claims;
BEGIN;
SAVEPOINT s;
SELECT agentcache.dedup_complete('sp-2') AS completed;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT * FROM dd('sp-2');
SELECT my_claims() AS claims;
BEGIN;
SAVEPOINT s;
SELECT agentcache.dedup_complete('sp-2') AS completed;
RELEASE SAVEPOINT s;
COMMIT;
SELECT * FROM dd('sp-2');
SELECT my_claims() AS claims;

-- ---------------------------------------------------------------- dedup_release (admin)
SELECT agentcache.dedup_begin('rel-1') AS acquired;
SELECT agentcache.dedup_release('rel-1') AS released, agentcache.dedup_release('rel-1') AS again,
       agentcache.dedup_release('rel-unknown') AS unknown;
SELECT count(*) AS state_rows FROM agentcache.dedup_state('rel-1');
-- the row stays, without a holder, until the window passes (it fences the
-- holder); dedup_state and stats() show none
SELECT count(*) AS table_rows, bool_and(holder_pid IS NULL) AS no_holder FROM agentcache.dedup WHERE message_id = 'rel-1';
-- the live holder is fenced (API.md 0.2.0): its completion raises 55000 and
-- changes nothing, and its lock goes back at once
SELECT my_claims() AS claims;
SELECT agentcache.dedup_complete('rel-1') AS completed;
SELECT my_claims() AS claims_after_fenced;
SELECT state, holder FROM dd('rel-1');
-- the next dedup_begin acquires at once, from attempts 1
SELECT agentcache.dedup_begin('rel-1') AS acquired_again;
SELECT state, holder, attempts FROM dd('rel-1');
SELECT agentcache.dedup_complete('rel-1') AS completed;
SELECT agentcache.dedup_begin('rel-1') AS duplicate;
-- releasing a completed message lets it be processed again, from attempts 1
SELECT agentcache.dedup_release('rel-1') AS released;
SELECT agentcache.dedup_begin('rel-1') AS acquired;
SELECT * FROM dd('rel-1');
SELECT agentcache.dedup_complete('rel-1') AS completed;
-- not executable by PUBLIC, nor by an application role
SELECT has_function_privilege('public', 'agentcache.dedup_release(text)', 'EXECUTE') AS public_release;
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace AND p.proname LIKE 'dedup%'
 ORDER BY p.proname;
CREATE ROLE regress_dedup_plain NOLOGIN;
CREATE ROLE regress_dedup_app NOLOGIN;
GRANT USAGE ON SCHEMA agentcache TO regress_dedup_plain;
SELECT agentcache.grant_app('regress_dedup_app');
SET ROLE regress_dedup_plain;
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.dedup_release('rel-1')$$),
  ($$SELECT agentcache.dedup_release('rel-unknown')$$),
  -- only USAGE: the non-admin functions need the table privileges grant_app gives
  ($$SELECT agentcache.dedup_begin('priv-1')$$)
) v(q);
RESET ROLE;
SET ROLE regress_dedup_app;
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.dedup_release('rel-1')$$),
  ($$SELECT agentcache.dedup_begin('priv-app')$$),
  ($$SELECT state FROM agentcache.dedup_state('priv-app')$$),
  ($$SELECT agentcache.dedup_complete('priv-app')$$),
  ($$SELECT agentcache.dedup_begin('priv-app')$$),
  ($$SELECT agentcache.dedup_begin('priv-app-2', 'c', 'b')$$),
  ($$SELECT agentcache.dedup_fail('priv-app-2', 'e')$$),
  ($$SELECT error FROM agentcache.dedup_state('priv-app-2')$$)
) v(q);
RESET ROLE;
SELECT * FROM dd('rel-1');
SELECT count(*) AS priv_1_rows FROM agentcache.dedup WHERE message_id = 'priv-1';

-- ---------------------------------------------------------------- application advisory locks
-- Thousands of application advisory locks, one- and two-key, keys spread over
-- the whole range, do not collide with claims.
SELECT count(pg_advisory_lock(g)) AS small_keys FROM generate_series(1, 1000) g;
SELECT count(pg_advisory_lock(('x' || md5(g::text))::bit(64)::bigint)) AS spread_keys FROM generate_series(1, 1000) g;
SELECT count(pg_advisory_lock(g, -g)) AS two_keys FROM generate_series(1, 1000) g;
SELECT count(pg_advisory_lock(('x' || md5('a' || g))::bit(32)::int, ('x' || md5('b' || g))::bit(32)::int)) AS spread_two_keys
  FROM generate_series(1, 1000) g;
SELECT count(*) AS app_locks FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objsubid IN (1, 2);
SELECT my_claims() AS claims;
SELECT agentcache.dedup_begin('adv-' || g) AS outcome, count(*)
  FROM generate_series(1, 200) g GROUP BY 1;
SELECT my_claims() AS claims;
SELECT count(agentcache.dedup_complete('adv-' || g)) AS completed FROM generate_series(1, 200) g;
SELECT agentcache.dedup_begin('adv-' || g) AS outcome, count(*)
  FROM generate_series(1, 200) g GROUP BY 1;
SELECT my_claims() AS claims;
-- application unlocks leave claims alone
SELECT agentcache.dedup_begin('adv-held') AS acquired;
SELECT count(*) FILTER (WHERE pg_advisory_unlock(g)) AS unlocked FROM generate_series(1, 1000) g;
SELECT count(*) FILTER (WHERE pg_advisory_unlock(g, -g)) AS unlocked FROM generate_series(1, 1000) g;
SELECT my_claims() AS claims;
SELECT * FROM dd('adv-held');
-- documented limitation: pg_advisory_unlock_all() in the holder's own session
-- also drops its claims
SELECT pg_advisory_unlock_all();
SELECT count(*) AS app_locks FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT my_claims() AS claims;
SELECT * FROM dd('adv-held');
SELECT left(sqlstate_of($$SELECT agentcache.dedup_complete('adv-held')$$), 5) AS complete_without_claim;
SELECT agentcache.dedup_begin('adv-held') AS taken_again;
SELECT * FROM dd('adv-held');
SELECT agentcache.dedup_complete('adv-held') AS completed;

-- ---------------------------------------------------------------- NULLs: 22004
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.dedup_begin(NULL)$$),
  ($$SELECT agentcache.dedup_begin(NULL, 'conv', 'body', '1 hour')$$),
  ($$SELECT agentcache.dedup_complete(NULL)$$),
  ($$SELECT agentcache.dedup_fail(NULL)$$),
  ($$SELECT agentcache.dedup_fail(NULL, 'error')$$),
  ($$SELECT count(*) FROM agentcache.dedup_state(NULL)$$),
  ($$SELECT agentcache.dedup_release(NULL)$$)
) v(q);
-- NULL conversation_id, body, within, error have a meaning
SELECT agentcache.dedup_begin('null-1', NULL, NULL, NULL) AS all_null;
SELECT agentcache.dedup_fail('null-1', NULL) AS error_null;
SELECT agentcache.dedup_begin('null-1', 'conv', NULL, NULL) AS body_null;
SELECT agentcache.dedup_begin('null-1', NULL, 'body', NULL) AS conversation_null;
SELECT agentcache.dedup_complete('null-1') AS completed;
SELECT * FROM dd('null-1');

-- ---------------------------------------------------------------- message_id > 256 bytes: 54000
SELECT k, f, sqlstate_of(format(f, id)) AS result
  FROM (VALUES ('257 x', repeat('x', 257)),
               ('129 é', repeat('é', 129)),
               ('x + 64 emoji', 'x' || repeat('😀', 64))) AS ids(k, id),
       (VALUES ('SELECT agentcache.dedup_begin(%L)'),
               ('SELECT agentcache.dedup_begin(%L, ''c'', ''b'', ''1 hour'')'),
               ('SELECT agentcache.dedup_complete(%L)'),
               ('SELECT agentcache.dedup_fail(%L, ''e'')'),
               ('SELECT count(*) FROM agentcache.dedup_state(%L)'),
               ('SELECT agentcache.dedup_release(%L)')) AS fs(f)
 ORDER BY k, f;
-- 256 bytes is accepted (128 two-byte characters too)
SELECT agentcache.dedup_begin(repeat('x', 256)) AS b256, agentcache.dedup_begin(repeat('é', 128)) AS e128;
SELECT agentcache.dedup_complete(repeat('x', 256)) AS c256, agentcache.dedup_complete(repeat('é', 128)) AS ce128;
SELECT count(*) AS rows_256 FROM agentcache.dedup WHERE message_id IN (repeat('x', 256), repeat('é', 128));
SELECT agentcache.dedup_release(repeat('x', 256)) AS r256, agentcache.dedup_release(repeat('é', 128)) AS re128;
-- nothing was written by the failed calls
SELECT count(*) AS long_rows FROM agentcache.dedup WHERE octet_length(message_id) > 256;
-- the empty message_id is an ordinary id
SELECT agentcache.dedup_begin('') AS empty_id;
SELECT agentcache.dedup_complete('') AS completed;
SELECT agentcache.dedup_begin('') AS empty_again;
SELECT agentcache.dedup_release('') AS released;

-- ---------------------------------------------------------------- within <= 0: 22023
SELECT w, sqlstate_of(format('SELECT agentcache.dedup_begin(%L, NULL, NULL, %L)', 'win-1', w)) AS result
  FROM unnest(ARRAY['0', '-1 second', '-1 microsecond', '1 month -30 days', '1 day -24 hours', '-1 year']) w;
SELECT count(*) AS win_rows FROM agentcache.dedup WHERE message_id = 'win-1';
SELECT agentcache.dedup_begin('win-1', NULL, NULL, '1 microsecond') AS tiny_window_ok;
SELECT agentcache.dedup_fail('win-1') AS failed;
SELECT agentcache.dedup_release('win-1') AS released;

-- ---------------------------------------------------------------- error order
-- 22004 before 54000/22023, before 25006 (read-only), before 55000 (no claim)
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.dedup_begin(NULL, NULL, NULL, '0')$$),
  ($$SELECT agentcache.dedup_begin(repeat('x', 257), NULL, NULL, '-1 second')$$)
) v(q);
BEGIN READ ONLY;
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.dedup_begin(NULL)$$),
  ($$SELECT agentcache.dedup_begin(repeat('x', 257))$$),
  ($$SELECT agentcache.dedup_begin('ro-1', NULL, NULL, '0')$$),
  ($$SELECT agentcache.dedup_complete(NULL)$$),
  ($$SELECT agentcache.dedup_complete(repeat('x', 257))$$),
  ($$SELECT agentcache.dedup_fail(NULL, 'e')$$),
  ($$SELECT agentcache.dedup_fail(repeat('x', 257), 'e')$$),
  ($$SELECT agentcache.dedup_release(NULL)$$),
  ($$SELECT agentcache.dedup_release(repeat('x', 257))$$)
) v(q);
ROLLBACK;

-- ---------------------------------------------------------------- READ ONLY: 25006
SELECT agentcache.dedup_begin('ro-held') AS acquired;
BEGIN READ ONLY;
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.dedup_begin('ro-1')$$),
  ($$SELECT agentcache.dedup_begin('ro-1', 'conv', 'body', '1 hour')$$),
  ($$SELECT agentcache.dedup_begin('dd-1')$$),
  ($$SELECT agentcache.dedup_begin('ro-held')$$),
  ($$SELECT agentcache.dedup_complete('ro-held')$$),
  ($$SELECT agentcache.dedup_fail('ro-held', 'e')$$),
  ($$SELECT agentcache.dedup_complete('ro-unknown')$$),
  ($$SELECT agentcache.dedup_fail('ro-unknown')$$),
  ($$SELECT agentcache.dedup_release('dd-1')$$),
  ($$SELECT agentcache.dedup_release('ro-unknown')$$)
) v(q);
-- dedup_state works
SELECT * FROM dd('dd-1');
SELECT * FROM dd('ro-held');
SELECT count(*) AS unknown_rows FROM agentcache.dedup_state('ro-1');
ROLLBACK;
-- nothing was left behind
SELECT count(*) AS ro_rows FROM agentcache.dedup WHERE message_id = 'ro-1';
SELECT * FROM dd('ro-held');
SELECT * FROM dd('dd-1');
SELECT my_claims() AS claims;
SELECT agentcache.dedup_complete('ro-held') AS completed;

-- ---------------------------------------------------------------- stats() and health()
SELECT dd_mark();
SELECT agentcache.dedup_begin('st-1') AS a1, agentcache.dedup_begin('st-2') AS a2, agentcache.dedup_begin('st-1') AS a1_again;
SELECT * FROM dd_delta();
SELECT agentcache.dedup_complete('st-1') AS completed;
SELECT agentcache.dedup_begin('st-1') AS d1, agentcache.dedup_begin('st-1') AS d2,
       agentcache.dedup_begin('st-3', 'conv-A', 'hello') AS d3;
SELECT * FROM dd_delta();
-- the other columns of the row; entries = rows
SELECT entries = (SELECT count(*) FROM agentcache.dedup) AS entries_are_rows, bytes > 0 AS has_bytes, evictions, invalidations, expirations >= 0 AS expirations_ok
  FROM agentcache.stats() WHERE tier = 'dedup';
-- health(): claims_held counts live claims
SELECT (agentcache.health()->'dedup'->>'claims_held')::bigint AS base_claims \gset
SELECT :base_claims >= 1 AS st2_is_held,
       (agentcache.health()->'dedup'->>'claims_held')::bigint >= my_claims() AS counts_mine;
SELECT agentcache.dedup_begin('st-4') AS acquired;
SELECT (agentcache.health()->'dedup'->>'claims_held')::bigint = :base_claims + 1 AS one_more;
SELECT agentcache.dedup_complete('st-4') AS c4, agentcache.dedup_fail('st-2') AS f2;
SELECT (agentcache.health()->'dedup'->>'claims_held')::bigint = :base_claims - 1 AS back;
SELECT my_claims() AS claims;
-- reset_stats() zeroes the counters
SELECT agentcache.reset_stats();
SELECT hits, misses, stale_hits FROM agentcache.stats() WHERE tier = 'dedup';

-- ---------------------------------------------------------------- clean up
SELECT count(*) > 0 AS had_rows FROM agentcache.dedup;
SELECT count(agentcache.dedup_release(message_id)) > 0 AS released FROM agentcache.dedup;
SELECT count(*) AS rows_left FROM agentcache.dedup;
SELECT my_claims() AS claims;
DROP OWNED BY regress_dedup_app, regress_dedup_plain;
DROP ROLE regress_dedup_app, regress_dedup_plain;
DROP TABLE dd_base;
DROP FUNCTION dd(text), my_claims(), dd_mark(), dd_delta();
