--
-- setup: install the extension and show its shape. Every later suite runs in
-- this database, in order.
--
CREATE EXTENSION agentcache;

-- Helpers the later suites share (they run in this database, in order).
-- sqlstate_of: runs a statement, returns 'SQLSTATE: message' (or 'ok: <result>').
CREATE FUNCTION sqlstate_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE sql INTO r;
  RETURN 'ok: ' || coalesce(r, '<NULL>');
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- wait_until: polls a condition (50 ms steps, at most 10 s); true once it holds.
CREATE FUNCTION wait_until(cond text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE ok boolean;
BEGIN
  FOR i IN 1 .. 200 LOOP
    EXECUTE 'SELECT coalesce((' || cond || ')::boolean, false)' INTO ok;
    IF ok THEN RETURN true; END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN false;
END
$$;

-- not relocatable, lives in its own schema
SELECT e.extname, e.extversion, e.extrelocatable, n.nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'agentcache';

-- the durable store: an ordinary logged table
SELECT c.relname, c.relkind, c.relpersistence
  FROM pg_class c
 WHERE c.relnamespace = 'agentcache'::regnamespace AND c.relname = 'turns';

SELECT column_name, data_type, is_nullable
  FROM information_schema.columns
 WHERE table_schema = 'agentcache' AND table_name = 'turns'
 ORDER BY ordinal_position;

-- primary key (session_id, seq)
SELECT a.attname
  FROM pg_index i
  JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = 'agentcache.turns'::regclass AND i.indisprimary
 ORDER BY k.ord;

-- the contract's memory and observability functions: signature and result
SELECT p.proname,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result,
       p.prosecdef AS security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace
   AND p.proname IN ('add_turn', 'get_context', 'get_turns', 'warm_session', 'end_session',
                     'forget_session', 'stats', 'health', 'reset_stats', 'grant_app')
 ORDER BY p.proname;

-- the stats view
SELECT column_name, data_type
  FROM information_schema.columns
 WHERE table_schema = 'agentcache' AND table_name = 'stats'
 ORDER BY ordinal_position;

-- no function of the extension is SECURITY DEFINER
SELECT count(*) AS security_definer_functions
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace AND p.prosecdef;

-- the history is dumped (extension config table)
SELECT c.relname
  FROM pg_extension e, unnest(e.extconfig) AS cfg(oid) JOIN pg_class c ON c.oid = cfg.oid
 WHERE e.extname = 'agentcache';

SELECT agentcache.health()->'preloaded' AS preloaded;

-- empty to begin with
SELECT count(*) FROM agentcache.turns;
