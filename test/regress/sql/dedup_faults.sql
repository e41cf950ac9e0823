--
-- dedup_faults: the dedup tier's bounds (API.md 0.2.0, "Resource bounds",
-- "Concurrency"): a session's claims are capped, a transaction that holds,
-- takes or releases a claim cannot be prepared, a window too far ahead is
-- "never", and stats() does bounded work.
--
SET TimeZone = 'UTC';

-- ---------------------------------------------------------------- the claim cap
SHOW agentcache.max_claims_per_session;
SET agentcache.max_claims_per_session = 3;
SELECT agentcache.dedup_begin('df-' || g) FROM generate_series(1, 3) g;
SELECT sqlstate_of($$SELECT agentcache.dedup_begin('df-4')$$) AS fourth_claim;
SELECT sqlstate_of($$SELECT agentcache.inbound('none', 'df-5', 'df-s', 'hi')$$) AS inbound_beyond_cap;
-- the holder may still renew what it holds, and a completed claim makes room
SELECT agentcache.dedup_begin('df-1') AS renewed;
SELECT agentcache.dedup_complete('df-1');
SELECT agentcache.dedup_begin('df-4') AS room_again;
-- a claim released by pg_advisory_unlock_all() (a known limitation) is not counted forever
SELECT pg_advisory_unlock_all();
SELECT agentcache.dedup_begin('df-' || g) FROM generate_series(6, 8) g;
RESET agentcache.max_claims_per_session;
SELECT sqlstate_of($$SET agentcache.max_claims_per_session = 0$$) AS min_is_one;
SELECT pg_advisory_unlock_all();
SELECT count(agentcache.dedup_release('df-' || g)) FROM generate_series(1, 8) g;
SELECT agentcache.forget_session('df-s');

-- ---------------------------------------------------------------- PREPARE TRANSACTION
SHOW max_prepared_transactions;
BEGIN;
SELECT agentcache.dedup_begin('df-prep') AS taken;
PREPARE TRANSACTION 'df-takes';
BEGIN;
SELECT agentcache.dedup_begin('df-prep2') AS taken;
COMMIT;
BEGIN;
SELECT agentcache.dedup_complete('df-prep2');
PREPARE TRANSACTION 'df-releases';
-- holding a claim from an earlier transaction is enough
BEGIN;
SELECT 1 AS unrelated;
PREPARE TRANSACTION 'df-holds';
SELECT agentcache.dedup_complete('df-prep2');
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid LIKE 'df-%';
SELECT state FROM agentcache.dedup_state('df-prep');
SELECT agentcache.dedup_release(m) FROM (VALUES ('df-prep'), ('df-prep2')) v(m) ORDER BY m;

-- ---------------------------------------------------------------- a window past the end of time
SELECT agentcache.dedup_begin('df-far', NULL, NULL, '300000 years') AS taken;
SELECT agentcache.dedup_complete('df-far');
SELECT state, updated_at IS NOT NULL AS ok FROM agentcache.dedup_state('df-far');
SELECT expires_at = 'infinity' AS never FROM agentcache.dedup WHERE message_id = 'df-far';
SELECT agentcache.dedup_begin('df-far') AS still_duplicate;
SELECT agentcache.dedup_release('df-far');

-- ---------------------------------------------------------------- stats() counts a bounded number of rows
-- exact while the table is small
SELECT agentcache.dedup_begin('df-a'), agentcache.dedup_complete('df-a');
SELECT entries AS exact FROM agentcache.stats() WHERE tier = 'dedup';
-- 30,000 rows: stats() reads no more than its bound, and reports an estimate
INSERT INTO agentcache.dedup (message_id, state, expires_at)
SELECT 'df-bulk-' || g, 'completed', now() + interval '1 hour' FROM generate_series(1, 30000) g;
ANALYZE agentcache.dedup;
SELECT entries BETWEEN 25000 AND 35000 AS estimate_close FROM agentcache.stats() WHERE tier = 'dedup';
CREATE TEMP TABLE df_plan (line text);
DO $$
DECLARE l text;
BEGIN
  FOR l IN EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM agentcache.stats() LOOP
    INSERT INTO df_plan VALUES (l);
  END LOOP;
END $$;
SELECT coalesce(sum((regexp_match(line, 'hit=(\d+)'))[1]::int + coalesce((regexp_match(line, 'read=(\d+)'))[1]::int, 0)), 0)
         < 120 AS bounded_buffers
  FROM df_plan WHERE line LIKE '%Buffers:%';
DELETE FROM agentcache.dedup WHERE message_id LIKE 'df-%';
