-- test/package: what a DBA does after `apt install postgresql-NN-agentcache`
-- and setting shared_preload_libraries (run by test/package/run.sh in a fresh
-- root with no source tree and no compiler). Every check raises on failure.
\set ON_ERROR_STOP 1
CREATE EXTENSION agentcache;

DO $$
BEGIN
  IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'agentcache') <> '0.2.0' THEN
    RAISE EXCEPTION 'extension version is not 0.2.0';
  END IF;
  IF NOT (agentcache.health()->>'preloaded')::boolean THEN
    RAISE EXCEPTION 'not preloaded: %', agentcache.health();
  END IF;
END $$;

-- a routing map: messaging instance -> clinic
CREATE TABLE public.clinics (instance text PRIMARY KEY, clinic jsonb NOT NULL);
INSERT INTO public.clinics VALUES ('wa-clinic-1', '{"clinic": "Clinica Sol", "tz": "America/Sao_Paulo"}');
SELECT agentcache.define_map('instances', 'SELECT instance, clinic FROM public.clinics');

-- a webhook served by inbound(), answered by outbound()
DO $$
DECLARE
  r jsonb;
  seq bigint;
BEGIN
  r := agentcache.inbound('wa-clinic-1', 'wamid.1', '5511999990000', 'Oi, quero marcar uma consulta');
  IF r->>'dedup' <> 'acquired' THEN RAISE EXCEPTION 'inbound: dedup is not acquired: %', r; END IF;
  IF r->'route'->>'clinic' <> 'Clinica Sol' THEN RAISE EXCEPTION 'inbound: wrong route: %', r; END IF;
  IF r->'context'->-1->>'content' <> 'Oi, quero marcar uma consulta' THEN
    RAISE EXCEPTION 'inbound: the context does not end with the message: %', r;
  END IF;
  seq := agentcache.outbound('wamid.1', '5511999990000', 'Claro! Qual dia prefere?');
  IF seq IS NULL THEN RAISE EXCEPTION 'outbound returned NULL'; END IF;
END $$;
-- the rank files came with the package: token_count counts exactly
DO $$
BEGIN
  IF agentcache.token_count('Hello, world!') <> 4 OR agentcache.token_count('Hello, world!', 'cl100k_base') <> 4 THEN
    RAISE EXCEPTION 'token_count from the package is wrong';
  END IF;
END $$;
