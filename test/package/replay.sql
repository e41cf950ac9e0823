-- test/package, second session: the same webhook re-delivered is a duplicate,
-- and the conversation holds both turns.
\set ON_ERROR_STOP 1
DO $$
DECLARE
  r jsonb;
BEGIN
  r := agentcache.inbound('wa-clinic-1', 'wamid.1', '5511999990000', 'Oi, quero marcar uma consulta');
  IF r->>'dedup' <> 'duplicate' THEN RAISE EXCEPTION 're-delivery: dedup is not duplicate: %', r; END IF;
  IF pg_catalog.jsonb_array_length(agentcache.get_context('5511999990000')) <> 2 THEN
    RAISE EXCEPTION 'get_context: expected 2 turns';
  END IF;
END $$;
SELECT 'package play: ok' AS result;
