--
-- dedup_direct: dedup_begin's claim of a new message and the completion
-- (dedup_complete, dedup_fail, outbound) write agentcache.dedup directly —
-- no SPI, planner or executor — while the table is as installed, and through
-- SQL otherwise (an administrator's trigger, constraint or policy applies,
-- with its own error; REPEATABLE READ and SERIALIZABLE keep SQL's rules).
-- The two paths must leave the same rows and correct index entries.
--
SET TimeZone = 'UTC';
\set VERBOSITY terse
-- the state rows of one run, with times made comparable
CREATE FUNCTION dd_rows(p text) RETURNS TABLE (m text, fp boolean, state text, held_by_me boolean, attempts int,
    error text, window_ok boolean, claim_window interval, lease boolean, holder_locked boolean,
    session_from_run boolean, reply boolean, reply_sent boolean)
LANGUAGE sql AS $$
  SELECT substr(message_id, length(p) + 1), fingerprint IS NOT NULL, state, holder_pid = pg_backend_pid(), attempts,
         error,
         CASE WHEN expires_at IS NULL THEN NULL
              ELSE expires_at - updated_at BETWEEN COALESCE(claim_window, interval '10 min')
                                               AND COALESCE(claim_window, interval '10 min') + interval '10 s' END,
         claim_window, lease_expires_at IS NOT NULL, holder_locked, session_id = 'sess-' || p,
         reply_seq IS NOT NULL, reply_sent
    FROM agentcache.dedup WHERE message_id LIKE p || '%' ORDER BY message_id
$$;

-- ---------------------------------------------------------------- the direct path
\set p 'dd-direct-'
SELECT agentcache.dedup_begin(:'p' || 'a') AS a_acquired;
SELECT agentcache.dedup_begin(:'p' || 'b', 'conv-' || :'p', 'hello', '10 minutes') AS b_acquired;
SELECT agentcache.dedup_complete(:'p' || 'b');
SELECT agentcache.dedup_begin(:'p' || 'b', 'conv-' || :'p', 'hello') AS b_again;
SELECT agentcache.dedup_begin(:'p' || 'c', lease => '0') AS c_acquired;
SELECT agentcache.dedup_fail(:'p' || 'c', 'boom');
SELECT agentcache.dedup_begin(:'p' || 'c') AS c_retried;
SELECT agentcache.dedup_fail(:'p' || 'c');
SELECT agentcache.dedup_begin(:'p' || 'd', lease => '1 hour') AS d_acquired;
SELECT agentcache.outbound(:'p' || 'd', 'sess-' || :'p', 'the reply') AS d_reply_seq;
SELECT agentcache.dedup_begin(:'p' || 'd') AS d_again;
BEGIN;
SELECT agentcache.dedup_begin(:'p' || 'e') AS e_acquired;
SELECT agentcache.dedup_complete(:'p' || 'e');
SELECT agentcache.dedup_begin(:'p' || 'e') AS e_again_same_transaction;
COMMIT;
SELECT * FROM dd_rows(:'p');

-- ---------------------------------------------------------------- the same through SQL
-- an administrator's trigger on agentcache.dedup: every write goes through
-- SQL, so it fires
CREATE TABLE dd_audit (op text, message_id text, state text);
CREATE FUNCTION dd_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO dd_audit VALUES (TG_OP, NEW.message_id, NEW.state);
  RETURN NEW;
END $$;
CREATE TRIGGER dd_audit AFTER INSERT OR UPDATE ON agentcache.dedup FOR EACH ROW EXECUTE FUNCTION dd_audit_fn();
\set p 'dd-sql-'
SELECT agentcache.dedup_begin(:'p' || 'a') AS a_acquired;
SELECT agentcache.dedup_begin(:'p' || 'b', 'conv-' || :'p', 'hello', '10 minutes') AS b_acquired;
SELECT agentcache.dedup_complete(:'p' || 'b');
SELECT agentcache.dedup_begin(:'p' || 'b', 'conv-' || :'p', 'hello') AS b_again;
SELECT agentcache.dedup_begin(:'p' || 'c', lease => '0') AS c_acquired;
SELECT agentcache.dedup_fail(:'p' || 'c', 'boom');
SELECT agentcache.dedup_begin(:'p' || 'c') AS c_retried;
SELECT agentcache.dedup_fail(:'p' || 'c');
SELECT agentcache.dedup_begin(:'p' || 'd', lease => '1 hour') AS d_acquired;
SELECT agentcache.outbound(:'p' || 'd', 'sess-' || :'p', 'the reply') AS d_reply_seq;
SELECT agentcache.dedup_begin(:'p' || 'd') AS d_again;
BEGIN;
SELECT agentcache.dedup_begin(:'p' || 'e') AS e_acquired;
SELECT agentcache.dedup_complete(:'p' || 'e');
SELECT agentcache.dedup_begin(:'p' || 'e') AS e_again_same_transaction;
COMMIT;
SELECT * FROM dd_rows(:'p');

SELECT op, substr(message_id, 8) AS m, state, count(*) FROM dd_audit GROUP BY 1, 2, 3 ORDER BY 2, 1, 3;
DROP TRIGGER dd_audit ON agentcache.dedup;
-- the two runs left the same rows
SELECT count(*) AS rows_only_direct FROM (SELECT * FROM dd_rows('dd-direct-') EXCEPT ALL SELECT * FROM dd_rows('dd-sql-')) d;
SELECT count(*) AS rows_only_sql FROM (SELECT * FROM dd_rows('dd-sql-') EXCEPT ALL SELECT * FROM dd_rows('dd-direct-')) d;

-- ---------------------------------------------------------------- index entries
-- many direct claims (a third with fingerprints) and completions (half with
-- a reply: the partial index of pending replies); amcheck finds every heap
-- row in every index (only rows matching a partial index's predicate)
SELECT count(agentcache.dedup_begin('dd-bulk-' || g, CASE WHEN g % 3 = 0 THEN 'conv-' || g END,
                                    CASE WHEN g % 3 = 0 THEN 'body' END)) AS claimed
  FROM generate_series(1, 300) g;
SELECT count(agentcache.outbound('dd-bulk-' || g, 'dd-sess-' || g, 'reply ' || g)) AS replied
  FROM generate_series(1, 300, 2) g;
SELECT count(agentcache.dedup_complete('dd-bulk-' || g)) AS completed FROM generate_series(2, 200, 2) g;
SELECT count(agentcache.dedup_fail('dd-bulk-' || g, 'e')) AS failed FROM generate_series(202, 300, 2) g;
-- every message asked again: the direct claim inserts speculatively without
-- looking first, finds the row, takes its tuple back and lets the SQL upsert
-- judge it (completed: duplicate; failed: acquired again, attempts 2)
SELECT r AS again, count(*)
  FROM generate_series(1, 300) g, agentcache.dedup_begin('dd-bulk-' || g) r GROUP BY r ORDER BY r;
SELECT count(*) AS bulk_rows, count(DISTINCT message_id) AS distinct_ids,
       count(*) FILTER (WHERE attempts = 2) AS retried
  FROM agentcache.dedup WHERE message_id LIKE 'dd-bulk-%';
CREATE EXTENSION amcheck;
SELECT 'no error' AS pkey_amcheck FROM (SELECT bt_index_parent_check('agentcache.dedup_pkey', heapallindexed => true)) c;
SELECT 'no error' AS fingerprint_amcheck
  FROM (SELECT bt_index_parent_check('agentcache.dedup_fingerprint', heapallindexed => true)) c;
SELECT 'no error' AS pending_amcheck
  FROM (SELECT bt_index_parent_check('agentcache.dedup_pending_replies', heapallindexed => true)) c;
DROP EXTENSION amcheck;
-- the pending replies read through the partial index: all 150
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT message_id FROM agentcache.dedup WHERE reply_sent = false ORDER BY updated_at, message_id;
SELECT count(*) AS pending_by_index FROM agentcache.dedup WHERE reply_sent = false AND message_id LIKE 'dd-bulk-%';
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT count(*) AS pending_replies FROM agentcache.pending_replies('0 s', 1000) p WHERE p.message_id LIKE 'dd-bulk-%';

-- ---------------------------------------------------------------- constraints
-- an administrator's CHECK constraints apply with their own error, to the
-- claim and to the completion (nothing is written)
ALTER TABLE agentcache.dedup ADD CONSTRAINT dd_short_ids CHECK (length(message_id) < 30);
SELECT agentcache.dedup_begin('dd-an-id-longer-than-thirty-bytes');
SELECT count(*) AS long_rows FROM agentcache.dedup WHERE message_id = 'dd-an-id-longer-than-thirty-bytes';
ALTER TABLE agentcache.dedup ADD CONSTRAINT dd_failures_say_why CHECK (state <> 'failed' OR error IS NOT NULL) NOT VALID;
SELECT agentcache.dedup_begin('dd-why') AS acquired;
SELECT agentcache.dedup_fail('dd-why');
SELECT state, error FROM agentcache.dedup_state('dd-why');
SELECT agentcache.dedup_fail('dd-why', 'the LLM timed out');
SELECT state, error FROM agentcache.dedup_state('dd-why');
ALTER TABLE agentcache.dedup DROP CONSTRAINT dd_short_ids, DROP CONSTRAINT dd_failures_say_why;

-- ---------------------------------------------------------------- isolation levels
-- REPEATABLE READ and SERIALIZABLE: SQL's snapshot and serialization rules
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT agentcache.dedup_begin('dd-rr') AS acquired;
SELECT agentcache.dedup_complete('dd-rr');
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT agentcache.dedup_begin('dd-ser') AS acquired;
SELECT agentcache.outbound('dd-ser', 'dd-ser-sess', 'serializable reply') AS seq;
COMMIT;
SELECT m, state, reply, reply_sent FROM dd_rows('dd-') WHERE m IN ('rr', 'ser');

-- ---------------------------------------------------------------- clean up
SELECT agentcache.dedup_release('dd-direct-a') AND agentcache.dedup_release('dd-sql-a') AS released_the_held_claims;
DELETE FROM agentcache.dedup WHERE message_id LIKE 'dd-%';
SELECT sum(agentcache.forget_session(s)) AS turns_forgotten
  FROM (SELECT 'dd-sess-' || g FROM generate_series(1, 300, 2) g
        UNION ALL VALUES ('sess-dd-direct-'), ('sess-dd-sql-'), ('dd-ser-sess')) v(s);
DROP TABLE dd_audit;
DROP FUNCTION dd_audit_fn();
DROP FUNCTION dd_rows(text);
