--
-- boundary: the C++ <-> PostgreSQL error boundary, both directions.
--
-- Each self-test kind raises its documented SQLSTATE; every call that unwinds
-- runs exactly one C++ destructor; the backend stays healthy afterwards.
--
SET TimeZone = 'UTC';

-- Runs one self-test kind, reports SQLSTATE and message (and detail/hint when
-- present) instead of letting the error escape.
CREATE FUNCTION boundary_probe(kind text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  r bigint;
  st text; msg text; det text; hnt text;
BEGIN
  r := agentcache._boundary_selftest(kind);
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
  RETURN st || ': ' || msg
         || CASE WHEN det <> '' THEN ' / detail: ' || det ELSE '' END
         || CASE WHEN hnt <> '' THEN ' / hint: ' || hnt ELSE '' END;
END
$$;

-- The destructor counter is per backend; report deltas only.
SELECT agentcache._boundary_selftest('ok') AS c0 \gset
-- 'ok' raises nothing and does not unwind
SELECT agentcache._boundary_selftest('ok') - :c0 AS delta_after_ok;

-- C++ -> PostgreSQL: std::runtime_error -> XX000
SELECT boundary_probe('cxx');
SELECT agentcache._boundary_selftest('ok') - :c0 AS delta_after_cxx;
-- std::bad_alloc -> 53200
SELECT boundary_probe('bad_alloc');
SELECT agentcache._boundary_selftest('ok') - :c0 AS delta_after_bad_alloc;
-- sql_error -> its SQLSTATE, message, detail and hint
SELECT boundary_probe('sql');
SELECT agentcache._boundary_selftest('ok') - :c0 AS delta_after_sql;
-- PostgreSQL -> C++ -> PostgreSQL: int4div(1, 0) raised inside pg_try -> 22012
SELECT boundary_probe('pg');
SELECT agentcache._boundary_selftest('ok') - :c0 AS delta_after_pg;
-- a C++ exception while an LWLock is held: the guard releases it
SELECT boundary_probe('cxx_lwlock');
SELECT agentcache._boundary_selftest('ok') - :c0 AS delta_after_cxx_lwlock;
SELECT agentcache._boundary_selftest('lwlock') AS lock_free;
-- bad kinds
SELECT boundary_probe('no such kind');
SELECT boundary_probe(NULL);
SELECT agentcache._boundary_selftest('ok') - :c0 AS delta_after_bad_kinds;

-- The same errors uncaught, as a client sees them (default verbosity shows
-- detail and hint), each followed by a query that works.
SELECT agentcache._boundary_selftest('cxx');
SELECT 1 AS still_alive;
SELECT agentcache._boundary_selftest('sql');
SELECT 2 AS still_alive;
SELECT agentcache._boundary_selftest('pg');
SELECT 3 AS still_alive;
SELECT agentcache._boundary_selftest('bad_alloc');
SELECT 4 AS still_alive;
SELECT agentcache._boundary_selftest('cxx_lwlock');
SELECT agentcache._boundary_selftest('lwlock') AS lock_free;
SELECT agentcache._boundary_selftest('ok') - :c0 AS delta_after_uncaught;

-- Inside a transaction block: error, rollback to savepoint, carry on.
BEGIN;
SAVEPOINT a;
SELECT agentcache._boundary_selftest('cxx_lwlock');
ROLLBACK TO SAVEPOINT a;
SELECT agentcache._boundary_selftest('lwlock') AS lock_free_in_xact;
SAVEPOINT b;
SELECT agentcache._boundary_selftest('pg');
ROLLBACK TO SAVEPOINT b;
SELECT 5 AS still_alive_in_xact;
COMMIT;

SELECT agentcache._boundary_selftest('ok') AS c1 \gset
SELECT :c1 - :c0 AS delta_so_far;

-- 500 iterations of each kind inside plpgsql exception blocks: every error is
-- caught with its SQLSTATE and every unwinding call ran one destructor.
DO $$
DECLARE
  c0 bigint := agentcache._boundary_selftest('ok');
  n_cxx int := 0; n_alloc int := 0; n_sql int := 0; n_pg int := 0; n_lw int := 0;
  free_count int := 0;
BEGIN
  FOR i IN 1..500 LOOP
    BEGIN PERFORM agentcache._boundary_selftest('cxx');
    EXCEPTION WHEN internal_error THEN n_cxx := n_cxx + 1; END;
    BEGIN PERFORM agentcache._boundary_selftest('bad_alloc');
    EXCEPTION WHEN out_of_memory THEN n_alloc := n_alloc + 1; END;
    BEGIN PERFORM agentcache._boundary_selftest('sql');
    EXCEPTION WHEN invalid_parameter_value THEN n_sql := n_sql + 1; END;
    BEGIN PERFORM agentcache._boundary_selftest('pg');
    EXCEPTION WHEN division_by_zero THEN n_pg := n_pg + 1; END;
    BEGIN PERFORM agentcache._boundary_selftest('cxx_lwlock');
    EXCEPTION WHEN internal_error THEN n_lw := n_lw + 1; END;
    free_count := free_count + agentcache._boundary_selftest('lwlock');
  END LOOP;
  RAISE NOTICE 'caught cxx=% bad_alloc=% sql=% pg=% cxx_lwlock=%; lock free % of 500; destructors ran %',
    n_cxx, n_alloc, n_sql, n_pg, n_lw, free_count, agentcache._boundary_selftest('ok') - c0;
END
$$;

SELECT agentcache._boundary_selftest('ok') - :c1 AS delta_after_loops;
SELECT agentcache._boundary_selftest('lwlock') AS lock_free;

-- A PostgreSQL error raised inside add_turn's own INSERT (by a user trigger)
-- crosses the C++ frames and surfaces unchanged; add_turn works afterwards.
CREATE FUNCTION boundary_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.content = 'refuse me' THEN
    RAISE EXCEPTION 'refused by trigger' USING ERRCODE = 'P0001', DETAIL = 'content was refuse me';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER boundary_refuse BEFORE INSERT ON agentcache.turns
  FOR EACH ROW EXECUTE FUNCTION boundary_refuse();

SELECT agentcache.add_turn('bnd-1', 'user', 'first');
\set SHOW_CONTEXT never
SELECT agentcache.add_turn('bnd-1', 'user', 'refuse me');
\set SHOW_CONTEXT errors
SELECT agentcache.add_turn('bnd-1', 'assistant', 'second');
DO $$
DECLARE n int := 0;
BEGIN
  FOR i IN 1..500 LOOP
    BEGIN PERFORM agentcache.add_turn('bnd-1', 'user', 'refuse me');
    EXCEPTION WHEN raise_exception THEN n := n + 1; END;
  END LOOP;
  RAISE NOTICE 'refused % of 500', n;
END
$$;
-- After a failed add_turn in the same transaction, a direct INSERT still
-- invalidates the cached copy (the "inside add_turn" state was reset).
SELECT agentcache.warm_session('bnd-1');
BEGIN;
SAVEPOINT s;
\set SHOW_CONTEXT never
SELECT agentcache.add_turn('bnd-1', 'user', 'refuse me') IS NULL AS refused;
\set SHOW_CONTEXT errors
ROLLBACK TO SAVEPOINT s;
INSERT INTO agentcache.turns (session_id, seq, role, content) VALUES ('bnd-1', 10, 'tool', 'direct');
COMMIT;
SELECT e->>'seq' AS seq, e->>'content' AS content
  FROM jsonb_array_elements(agentcache.get_context('bnd-1')) e;

DROP TRIGGER boundary_refuse ON agentcache.turns;
DROP FUNCTION boundary_refuse();

-- Normal operation afterwards: nothing of the failed calls remains.
SELECT agentcache.add_turn('bnd-1', 'user', 'third') > 10 AS after_direct_row;
SELECT e->>'role' AS role, e->>'content' AS content
  FROM jsonb_array_elements(agentcache.get_context('bnd-1')) e;
SELECT role, content FROM agentcache.get_turns('bnd-1');
SELECT count(*) FROM agentcache.turns WHERE session_id = 'bnd-1';

SELECT agentcache.forget_session('bnd-1');
SELECT agentcache.get_context('bnd-1');
DROP FUNCTION boundary_probe(text);
