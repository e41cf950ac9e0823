--
-- memory_dml: direct UPDATE / DELETE / INSERT / TRUNCATE on agentcache.turns
-- is reflected by the next get_context after commit, also when the session
-- was cached before (the cached copy is invalidated).
--
SET TimeZone = 'UTC';

CREATE FUNCTION dml_ref(s text) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content,
                                               'at', to_jsonb(created_at))
                            || CASE WHEN meta IS NULL THEN '{}'::jsonb
                                    ELSE jsonb_build_object('meta', meta) END
                            ORDER BY seq), '[]'::jsonb)
    FROM (SELECT * FROM agentcache.turns WHERE session_id = s ORDER BY seq DESC LIMIT 30) t
$$;
-- "seq:content" list, oldest first
CREATE FUNCTION dml_show(s text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg((e->>'seq') || ':' || (e->>'content'), ' ' ORDER BY o), '<empty>')
    FROM jsonb_array_elements(agentcache.get_context(s)) WITH ORDINALITY a(e, o)
$$;
-- cache both sessions and prove the next read is served from memory
CREATE FUNCTION dml_warm() RETURNS text LANGUAGE plpgsql AS $$
DECLARE h0 bigint; h1 bigint;
BEGIN
  PERFORM agentcache.get_context('dml-a'), agentcache.get_context('dml-b');
  SELECT hits INTO h0 FROM agentcache.stats() WHERE tier = 'session';
  PERFORM agentcache.get_context('dml-a'), agentcache.get_context('dml-b');
  SELECT hits INTO h1 FROM agentcache.stats() WHERE tier = 'session';
  RETURN CASE WHEN h1 - h0 = 2 THEN 'both cached' ELSE 'NOT cached: ' || (h1 - h0) END;
END
$$;
CREATE FUNCTION dml_invalidations() RETURNS bigint LANGUAGE sql AS $$
  SELECT invalidations FROM agentcache.stats() WHERE tier = 'session'
$$;

SELECT agentcache.add_turn('dml-a', 'user', 'a1'), agentcache.add_turn('dml-a', 'assistant', 'a2'),
       agentcache.add_turn('dml-a', 'user', 'a3');
SELECT agentcache.add_turn('dml-b', 'user', 'b1'), agentcache.add_turn('dml-b', 'assistant', 'b2');
SELECT dml_warm();
SELECT dml_show('dml-a') AS a, dml_show('dml-b') AS b;
SELECT dml_invalidations() AS inv0 \gset

-- ---------------------------------------------------------------- UPDATE content
UPDATE agentcache.turns SET content = 'a2 changed' WHERE session_id = 'dml-a' AND seq = 2;
SELECT dml_show('dml-a') AS a, agentcache.get_context('dml-a') = dml_ref('dml-a') AS a_ok;
SELECT dml_invalidations() > :inv0 AS invalidated;

-- UPDATE of meta, role and created_at only
SELECT dml_warm();
SELECT dml_invalidations() AS inv \gset
UPDATE agentcache.turns SET meta = '{"edited": true}', role = 'system',
       created_at = '2001-02-03 04:05:06+00'
 WHERE session_id = 'dml-a' AND seq = 1;
SELECT e - 'at' AS turn, e->'at' AS at FROM jsonb_array_elements(agentcache.get_context('dml-a')) e LIMIT 1;
SELECT agentcache.get_context('dml-a') = dml_ref('dml-a') AS a_ok;
SELECT dml_invalidations() > :inv AS invalidated;

-- ---------------------------------------------------------------- UPDATE moves a turn between sessions
SELECT dml_warm();
SELECT dml_invalidations() AS inv \gset
UPDATE agentcache.turns SET session_id = 'dml-b', seq = 100 WHERE session_id = 'dml-a' AND seq = 3;
SELECT dml_show('dml-a') AS a, dml_show('dml-b') AS b;
SELECT agentcache.get_context('dml-a') = dml_ref('dml-a') AS a_ok,
       agentcache.get_context('dml-b') = dml_ref('dml-b') AS b_ok;
SELECT dml_invalidations() - :inv >= 2 AS both_invalidated;

-- ---------------------------------------------------------------- DELETE one row
SELECT dml_warm();
SELECT dml_invalidations() AS inv \gset
DELETE FROM agentcache.turns WHERE session_id = 'dml-b' AND seq = 1;
SELECT dml_show('dml-b') AS b, agentcache.get_context('dml-b') = dml_ref('dml-b') AS b_ok;
SELECT dml_invalidations() > :inv AS invalidated;

-- ---------------------------------------------------------------- INSERT directly
SELECT dml_warm();
SELECT dml_invalidations() AS inv \gset
INSERT INTO agentcache.turns (session_id, seq, role, content, meta)
VALUES ('dml-a', 50, 'tool', 'direct 50', '{"via": "insert"}'),
       ('dml-b', 0, 'system', 'direct 0 (older than all)', NULL);
SELECT dml_show('dml-a') AS a, dml_show('dml-b') AS b;
SELECT agentcache.get_context('dml-a') = dml_ref('dml-a') AS a_ok,
       agentcache.get_context('dml-b') = dml_ref('dml-b') AS b_ok;
SELECT dml_invalidations() - :inv >= 2 AS both_invalidated;
-- add_turn continues after the directly inserted seq
SELECT agentcache.add_turn('dml-a', 'user', 'after direct') > 50 AS after_50;
SELECT dml_show('dml-a') AS a;

-- ---------------------------------------------------------------- DML in a larger transaction
-- the caller sees its own direct changes at once (own transaction), others after commit
SELECT dml_warm();
BEGIN;
UPDATE agentcache.turns SET content = 'a1 in tx' WHERE session_id = 'dml-a' AND seq = 1;
SELECT dml_show('dml-a') AS a_inside;
SELECT agentcache.add_turn('dml-a', 'assistant', 'added in tx') > 51 AS added;
SELECT dml_show('dml-a') AS a_inside;
COMMIT;
SELECT dml_show('dml-a') AS a_after, agentcache.get_context('dml-a') = dml_ref('dml-a') AS a_ok;

-- ---------------------------------------------------------------- rolled-back DML
SELECT dml_warm();
SELECT dml_show('dml-a') AS a_before;
BEGIN;
UPDATE agentcache.turns SET content = 'rolled back' WHERE session_id = 'dml-a';
DELETE FROM agentcache.turns WHERE session_id = 'dml-b';
SELECT dml_show('dml-a') AS a_inside, dml_show('dml-b') AS b_inside;
ROLLBACK;
SELECT dml_show('dml-a') AS a_after, dml_show('dml-b') AS b_after;
SELECT agentcache.get_context('dml-a') = dml_ref('dml-a') AS a_ok,
       agentcache.get_context('dml-b') = dml_ref('dml-b') AS b_ok;
-- rolled back to a savepoint
SELECT dml_warm();
BEGIN;
SAVEPOINT s;
UPDATE agentcache.turns SET content = 'rolled back too' WHERE session_id = 'dml-b';
ROLLBACK TO SAVEPOINT s;
UPDATE agentcache.turns SET content = 'kept' WHERE session_id = 'dml-a' AND seq = 2;
COMMIT;
SELECT dml_show('dml-a') AS a, dml_show('dml-b') AS b;
SELECT agentcache.get_context('dml-a') = dml_ref('dml-a') AS a_ok,
       agentcache.get_context('dml-b') = dml_ref('dml-b') AS b_ok;

-- released savepoint, nested: kept
SELECT dml_warm();
BEGIN;
SAVEPOINT s1;
SAVEPOINT s2;
UPDATE agentcache.turns SET content = 'released' WHERE session_id = 'dml-b' AND seq = 2;
RELEASE SAVEPOINT s2;
RELEASE SAVEPOINT s1;
COMMIT;
SELECT dml_show('dml-b') AS b, agentcache.get_context('dml-b') = dml_ref('dml-b') AS b_ok;

-- INSERT ... ON CONFLICT DO UPDATE (an upsert is an UPDATE here)
SELECT dml_warm();
INSERT INTO agentcache.turns AS t (session_id, seq, role, content)
VALUES ('dml-b', 100, 'user', 'upserted')
ON CONFLICT (session_id, seq) DO UPDATE SET content = EXCLUDED.content;
SELECT dml_show('dml-b') AS b, agentcache.get_context('dml-b') = dml_ref('dml-b') AS b_ok;

-- ---------------------------------------------------------------- DELETE a whole session
SELECT dml_warm();
DELETE FROM agentcache.turns WHERE session_id = 'dml-b';
SELECT dml_show('dml-b') AS b;
SELECT agentcache.add_turn('dml-b', 'user', 'b again') AS b_seq;
SELECT dml_show('dml-b') AS b;

-- ---------------------------------------------------------------- TRUNCATE
-- rolled back: nothing changes
SELECT dml_warm();
BEGIN;
TRUNCATE agentcache.turns;
SELECT dml_show('dml-a') AS a_inside, dml_show('dml-b') AS b_inside;
ROLLBACK;
SELECT dml_show('dml-a') AS a, dml_show('dml-b') AS b;
-- committed: every cached session of this database is emptied
SELECT dml_warm();
SELECT dml_invalidations() AS inv \gset
TRUNCATE agentcache.turns;
SELECT dml_show('dml-a') AS a, dml_show('dml-b') AS b;
SELECT agentcache.get_context('dml-a', 40) AS a_table, agentcache.get_context('dml-b', 1, 0) AS b_trimmed;
SELECT dml_invalidations() - :inv >= 2 AS both_invalidated;
-- and the sessions start over
SELECT agentcache.add_turn('dml-a', 'user', 'fresh') AS a_seq;
SELECT dml_show('dml-a') AS a;

-- ---------------------------------------------------------------- add_turn's direct insert
-- add_turn inserts its row itself (no SQL) while agentcache.turns is as installed:
-- seq continues the session's newest (also inside one transaction) and every
-- heap row is indexed (amcheck)
BEGIN;
SELECT count(agentcache.add_turn('dml-direct-' || (g % 7), 'user', 'turn ' || g)) FROM generate_series(1, 700) g;
SELECT agentcache.add_turn('dml-direct-1', 'assistant', 'in the same transaction') AS seq_101;
COMMIT;
SELECT count(*) AS turns, count(DISTINCT session_id) AS sessions, max(seq) AS max_seq,
       bool_and(seq BETWEEN 1 AND 101) AS seqs_dense
  FROM agentcache.turns WHERE session_id LIKE 'dml-direct-%';
SELECT (SELECT array_agg(seq ORDER BY seq) FROM agentcache.turns WHERE session_id = 'dml-direct-3')
       = (SELECT array_agg(g::bigint) FROM generate_series(1, 100) g) AS seqs_1_to_100;
CREATE EXTENSION amcheck;
SELECT 'no error' AS turns_pkey_amcheck FROM (SELECT bt_index_parent_check('agentcache.turns_pkey', heapallindexed => true)) c;
-- an administrator's trigger sends add_turn through SQL, so it fires; dropped, direct again
CREATE TABLE dml_audit (session_id text, seq bigint);
CREATE FUNCTION dml_audit_fn() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO dml_audit VALUES (NEW.session_id, NEW.seq); RETURN NULL; END$$;
CREATE TRIGGER dml_audit AFTER INSERT ON agentcache.turns FOR EACH ROW EXECUTE FUNCTION dml_audit_fn();
SELECT agentcache.add_turn('dml-direct-1', 'user', 'audited') AS seq_102;
SELECT * FROM dml_audit;
DROP TRIGGER dml_audit ON agentcache.turns;
SELECT agentcache.add_turn('dml-direct-1', 'user', 'not audited') AS seq_103;
SELECT count(*) AS audited FROM dml_audit;
SELECT e->>'seq' AS seq, e->>'role' AS role, e->>'content' AS content
  FROM jsonb_array_elements(agentcache.get_context('dml-direct-1', 3)) e;
SELECT 'no error' AS turns_pkey_amcheck_again FROM (SELECT bt_index_parent_check('agentcache.turns_pkey', heapallindexed => true)) c;
DROP EXTENSION amcheck;
DROP TABLE dml_audit;
DROP FUNCTION dml_audit_fn();
SELECT sum(agentcache.forget_session('dml-direct-' || g)) AS direct_deleted FROM generate_series(0, 6) g;

-- ---------------------------------------------------------------- the next seq
-- add_turn starts its look for the session's newest seq at the newest seq the
-- cache holds — a hint: it may be behind the table (an application's INSERT
-- in this transaction) or ahead of it (turns deleted in this transaction; the
-- cache hears of it at commit). Either way the seq is max(seq) + 1.
SELECT count(agentcache.add_turn('dml-hint', 'user', 'turn ' || g)) AS added FROM generate_series(1, 5) g;
SELECT agentcache.warm_session('dml-hint') AS cached;
BEGIN;
DELETE FROM agentcache.turns WHERE session_id = 'dml-hint' AND seq >= 4;
SELECT agentcache.add_turn('dml-hint', 'user', 'after the delete') AS seq_4;
COMMIT;
SELECT agentcache.warm_session('dml-hint') AS cached_again;
BEGIN;
INSERT INTO agentcache.turns (session_id, seq, role, content) VALUES ('dml-hint', 10, 'user', 'ahead of the cache');
SELECT agentcache.add_turn('dml-hint', 'assistant', 'after the insert') AS seq_11;
COMMIT;
BEGIN;
DELETE FROM agentcache.turns WHERE session_id = 'dml-hint';
SELECT agentcache.add_turn('dml-hint', 'user', 'all gone') AS seq_1;
ROLLBACK;
SELECT array_agg(seq ORDER BY seq) AS seqs, array_agg(content ORDER BY seq) AS contents
  FROM agentcache.turns WHERE session_id = 'dml-hint';
SELECT string_agg(e->>'seq', ',') AS cached_seqs FROM jsonb_array_elements(agentcache.get_context('dml-hint')) e;
SELECT agentcache.forget_session('dml-hint') AS hint_deleted;

-- When the session is cached and add_turn holds its writer lock, the cache
-- knows the newest seq (every committed turn is applied to it, every other
-- committed change invalidates it): the next seq is taken from it without a
-- scan of the primary key (pg_stat_get_xact_numscans: this backend's scans
-- of it not yet reported, which are not reported inside a transaction). It scans when this transaction touched the
-- session, or when a change other than add_turn's is in progress anywhere
-- (here: this transaction's, rolled back to a savepoint — still counted
-- until the transaction ends).
SELECT count(agentcache.add_turn('dml-known', 'user', 'turn ' || g)) AS added FROM generate_series(1, 3) g;
SELECT agentcache.warm_session('dml-known') AS cached;
BEGIN;
SELECT pg_stat_get_xact_numscans('agentcache.turns_pkey'::regclass) AS scans \gset
SELECT agentcache.add_turn('dml-known', 'user', 'from the cache') AS seq_4;
SELECT pg_stat_get_xact_numscans('agentcache.turns_pkey'::regclass) - :scans AS pk_scans_0;
SELECT agentcache.add_turn('dml-known', 'assistant', 'second in the transaction') AS seq_5;
SELECT pg_stat_get_xact_numscans('agentcache.turns_pkey'::regclass) - :scans AS pk_scans_1;
COMMIT;
-- an application's INSERT, committed, with a gap: invalidated at its commit
INSERT INTO agentcache.turns (session_id, seq, role, content) VALUES ('dml-known', 20, 'user', 'gap');
BEGIN;
SELECT pg_stat_get_xact_numscans('agentcache.turns_pkey'::regclass) AS scans \gset
SELECT agentcache.add_turn('dml-known', 'assistant', 'after the gap') AS seq_21;
SELECT pg_stat_get_xact_numscans('agentcache.turns_pkey'::regclass) - :scans AS pk_scans_1;
COMMIT;
SELECT agentcache.warm_session('dml-known') AS cached_again;
BEGIN;
SELECT pg_stat_get_xact_numscans('agentcache.turns_pkey'::regclass) AS scans \gset
SELECT agentcache.add_turn('dml-known', 'user', 'from the cache again') AS seq_22;
SELECT pg_stat_get_xact_numscans('agentcache.turns_pkey'::regclass) - :scans AS pk_scans_0;
COMMIT;
BEGIN;
SAVEPOINT s;
INSERT INTO agentcache.turns (session_id, seq, role, content) VALUES ('dml-known', 40, 'user', 'rolled back');
ROLLBACK TO SAVEPOINT s;
SELECT pg_stat_get_xact_numscans('agentcache.turns_pkey'::regclass) AS scans \gset
SELECT agentcache.add_turn('dml-known', 'assistant', 'after the savepoint') AS seq_23;
SELECT pg_stat_get_xact_numscans('agentcache.turns_pkey'::regclass) - :scans AS pk_scans_1;
COMMIT;
SELECT array_agg(seq ORDER BY seq) AS seqs FROM agentcache.turns WHERE session_id = 'dml-known';
SELECT string_agg(e->>'seq', ',') AS cached_seqs FROM jsonb_array_elements(agentcache.get_context('dml-known')) e;
SELECT agentcache.forget_session('dml-known') AS known_deleted;

-- ---------------------------------------------------------------- cleanup
SELECT agentcache.forget_session(s) AS deleted FROM unnest(ARRAY['dml-a', 'dml-b']) s;
SELECT count(*) AS rows_left FROM agentcache.turns;
DROP FUNCTION dml_ref(text);
DROP FUNCTION dml_show(text);
DROP FUNCTION dml_warm();
DROP FUNCTION dml_invalidations();
