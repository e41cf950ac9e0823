--
-- security: nothing of the extension resolves through the caller's
-- search_path; admin functions are not executable by PUBLIC; table
-- privileges are needed, and grant_app() grants them.
--
SET TimeZone = 'UTC';

-- ---------------------------------------------------------------- search_path hijacking
CREATE ROLE regress_sp NOLOGIN;
-- Look-alikes in public that log every call. With search_path = public,
-- pg_catalog they would win over the built-ins for unqualified names.
CREATE TABLE public.hijack_log (what text);
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log VALUES ('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log VALUES ('lower(text)'); RETURN pg_catalog.lower($1); END $$;
CREATE FUNCTION public.to_jsonb(timestamptz) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log VALUES ('to_jsonb(timestamptz)'); RETURN pg_catalog.to_jsonb($1); END $$;
CREATE FUNCTION public.coalesce_int8(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log VALUES ('max(bigint)'); RETURN pg_catalog.int8larger($1, $2); END $$;
CREATE AGGREGATE public.max(bigint) (SFUNC = public.coalesce_int8, STYPE = bigint);
CREATE FUNCTION public.hijack_texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log VALUES ('text = text'); RETURN pg_catalog.texteq($1, $2); END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.hijack_texteq);
CREATE FUNCTION public.hijack_int8pl(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log VALUES ('bigint + bigint'); RETURN pg_catalog.int8pl($1, $2); END $$;
CREATE OPERATOR public.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.hijack_int8pl);
CREATE FUNCTION public.hijack_int8eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log VALUES ('bigint = bigint'); RETURN pg_catalog.int8eq($1, $2); END $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.hijack_int8eq);
CREATE FUNCTION public.hijack_int8lt(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log VALUES ('bigint < bigint'); RETURN pg_catalog.int8lt($1, $2); END $$;
CREATE OPERATOR public.< (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.hijack_int8lt);
CREATE FUNCTION public.hijack_textlen(text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log VALUES ('length(text)'); RETURN pg_catalog.length($1); END $$;
CREATE FUNCTION public.length(text) RETURNS integer LANGUAGE sql AS $$ SELECT public.hijack_textlen($1) $$;
CREATE FUNCTION public.char_length(text) RETURNS integer LANGUAGE sql AS $$ SELECT public.hijack_textlen($1) $$;

-- a fresh backend (no plan prepared under another search_path yet)
\c
SET TimeZone = 'UTC';
SET search_path = public, pg_catalog;
SHOW search_path;

-- every memory and observability function, both get_context paths
SELECT agentcache.add_turn('sec-1', 'user', 'hello') AS s1,
       agentcache.add_turn('sec-1', 'assistant', 'hi', '{"k": 1}') AS s2;
SELECT count(agentcache.add_turn('sec-2', 'user', 'turn ' || g)) FROM generate_series(1, 35) g;
SELECT jsonb_array_length(agentcache.get_context('sec-1')) AS cold,
       jsonb_array_length(agentcache.get_context('sec-1')) AS cached,
       jsonb_array_length(agentcache.get_context('sec-1', 1, 100)) AS trimmed,
       jsonb_array_length(agentcache.get_context('sec-2', 35)) AS from_table,
       jsonb_array_length(agentcache.get_context('sec-2', 33, 10)) AS from_table_trimmed;
SELECT count(*) AS turns_rows FROM agentcache.get_turns('sec-1');
SELECT count(*) AS turns_rows_table FROM agentcache.get_turns('sec-2', 34);
SELECT agentcache.end_session('sec-1') AS ended, agentcache.warm_session('sec-1') AS warmed,
       agentcache.warm_session('sec-2') AS warmed2;
BEGIN;
SELECT agentcache.add_turn('sec-1', 'user', 'in tx') AS s3;
SELECT jsonb_array_length(agentcache.get_context('sec-1')) AS own_uncommitted;
COMMIT;
-- (this test's own statements qualify their operators too)
UPDATE agentcache.turns SET content = 'direct'
 WHERE session_id OPERATOR(pg_catalog.=) 'sec-1' AND seq OPERATOR(pg_catalog.=) 1;
SELECT jsonb_array_length(agentcache.get_context('sec-1')) AS after_update;
SELECT tier, name FROM agentcache.stats() WHERE tier OPERATOR(pg_catalog.=) 'session';
SELECT tier, name FROM agentcache.stats WHERE tier OPERATOR(pg_catalog.=) 'session';
SELECT agentcache.health() ? 'preloaded' AS health_ok;
SELECT agentcache.reset_stats();
SELECT agentcache.forget_session('sec-1') AS deleted, agentcache.forget_session('sec-2') AS deleted2;
SELECT agentcache.grant_app('regress_sp');
SELECT agentcache._boundary_selftest('lwlock') AS lock_free;
RESET search_path;

-- nothing of the above called a look-alike
SELECT count(*) AS hijacked_calls FROM public.hijack_log;
SELECT what, count(*) FROM public.hijack_log GROUP BY what ORDER BY what;
-- (the look-alikes do work when called on purpose)
SET search_path = public, pg_catalog;
SELECT lower('X') AS hijacked_lower;
RESET search_path;
SELECT what, count(*) FROM public.hijack_log GROUP BY what ORDER BY what;
SELECT has_table_privilege('regress_sp', 'agentcache.turns', 'INSERT') AS granted;
DROP OWNED BY regress_sp;
DROP ROLE regress_sp;

DROP OPERATOR public.= (text, text);
DROP OPERATOR public.= (bigint, bigint);
DROP OPERATOR public.+ (bigint, bigint);
DROP OPERATOR public.< (bigint, bigint);
DROP AGGREGATE public.max(bigint);
DROP FUNCTION public.now(), public.lower(text), public.to_jsonb(timestamptz),
              public.coalesce_int8(bigint, bigint), public.hijack_texteq(text, text),
              public.hijack_int8pl(bigint, bigint), public.hijack_int8eq(bigint, bigint),
              public.hijack_int8lt(bigint, bigint), public.length(text), public.char_length(text),
              public.hijack_textlen(text);
DROP TABLE public.hijack_log;

-- ---------------------------------------------------------------- privileges
-- admin functions are not executable by PUBLIC; the others are
SELECT p.oid::regprocedure AS function,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'agentcache'::regnamespace
   AND p.proname IN ('add_turn', 'get_context', 'get_turns', 'warm_session', 'end_session',
                     'forget_session', 'stats', 'health', 'reset_stats', 'grant_app',
                     '_boundary_selftest', '_reset_memory')
 ORDER BY p.proname;
-- no SECURITY DEFINER function
SELECT count(*) AS security_definer FROM pg_proc
 WHERE pronamespace = 'agentcache'::regnamespace AND prosecdef;
-- the table is not open to PUBLIC
SELECT has_table_privilege('public', 'agentcache.turns', 'SELECT') AS public_select,
       has_table_privilege('public', 'agentcache.turns', 'INSERT') AS public_insert,
       has_schema_privilege('public', 'agentcache', 'USAGE') AS public_usage;

CREATE ROLE regress_app NOLOGIN;
-- a cached session the app role must not be able to read without privileges
SELECT agentcache.add_turn('sec-3', 'user', 'secret') AS s1;
SELECT agentcache.warm_session('sec-3') AS cached;

\set VERBOSITY sqlstate
-- without USAGE on the schema: 42501 for everything
SET ROLE regress_app;
SELECT agentcache.get_context('sec-3');
SELECT agentcache.add_turn('sec-4', 'user', 'x');
SELECT agentcache.health() IS NOT NULL;
RESET ROLE;

-- with only USAGE: admin functions 42501, table-backed functions 42501
GRANT USAGE ON SCHEMA agentcache TO regress_app;
SET ROLE regress_app;
SELECT agentcache.reset_stats();
SELECT agentcache.grant_app('regress_app');
SELECT agentcache._boundary_selftest('ok');
SELECT agentcache._reset_memory();
SELECT agentcache.add_turn('sec-4', 'user', 'x');
SELECT agentcache.get_context('sec-4');
SELECT agentcache.get_turns('sec-4');
SELECT agentcache.forget_session('sec-3');
SELECT agentcache.warm_session('sec-4');
-- the cached session is no exception: reading it needs SELECT on the table
SELECT jsonb_array_length(agentcache.get_context('sec-3'));
SELECT jsonb_array_length(agentcache.get_context('sec-3', 40));
SELECT count(*) FROM agentcache.get_turns('sec-3');
SELECT agentcache.warm_session('sec-3');
SELECT count(*) FROM agentcache.turns;
RESET ROLE;
\set VERBOSITY default
-- nothing changed
SELECT session_id, seq, content FROM agentcache.turns ORDER BY 1, 2;

-- grant_app gives what the application needs
SELECT agentcache.grant_app('regress_app');
SET ROLE regress_app;
SELECT agentcache.add_turn('sec-4', 'user', 'app turn') AS s1;
SELECT e->>'content' AS content FROM jsonb_array_elements(agentcache.get_context('sec-4')) e;
SELECT e->>'content' AS content FROM jsonb_array_elements(agentcache.get_context('sec-3')) e;
SELECT count(*) FROM agentcache.get_turns('sec-4', 40);
SELECT agentcache.warm_session('sec-4') AS warmed, agentcache.end_session('sec-4') AS ended;
SELECT tier, name FROM agentcache.stats;
SELECT tier, name FROM agentcache.stats();
SELECT agentcache.health() ? 'preloaded' AS health_ok;
SELECT agentcache.forget_session('sec-4') AS deleted;
-- still no admin functions
\set VERBOSITY sqlstate
SELECT agentcache.reset_stats();
SELECT agentcache._reset_memory();
SELECT agentcache._boundary_selftest('ok');
-- and no direct UPDATE / TRUNCATE of the history
UPDATE agentcache.turns SET content = 'x';
TRUNCATE agentcache.turns;
\set VERBOSITY default
RESET ROLE;
SELECT has_table_privilege('regress_app', 'agentcache.turns', 'SELECT') AS sel,
       has_table_privilege('regress_app', 'agentcache.turns', 'INSERT') AS ins,
       has_table_privilege('regress_app', 'agentcache.turns', 'DELETE') AS del,
       has_table_privilege('regress_app', 'agentcache.turns', 'UPDATE') AS upd,
       has_table_privilege('regress_app', 'agentcache.turns', 'TRUNCATE') AS trunc;

-- ---------------------------------------------------------------- cleanup
SELECT agentcache.forget_session('sec-3') AS deleted;
DROP OWNED BY regress_app;
DROP ROLE regress_app;
SELECT count(*) AS rows_left FROM agentcache.turns;
