--
-- budgets: get_context / get_turns / inbound cut to a token budget
-- (API.md 0.2.0, "Token budgets"): max_tokens (Σ token_count(content) +
-- agentcache.turn_token_overhead per turn), keep_system, start_on_user, the
-- GUCs agentcache.token_encoding and agentcache.turn_token_overhead.
--
SET TimeZone = 'UTC';
SELECT name, setting, context, vartype, min_val, max_val, enumvals FROM pg_settings
 WHERE name IN ('agentcache.token_encoding', 'agentcache.turn_token_overhead') ORDER BY name;
\set VERBOSITY terse
SET agentcache.token_encoding = 'p50k_base';
SET agentcache.turn_token_overhead = 101;
\set VERBOSITY default

-- a clinic chat: a system prompt, then user / assistant / tool turns
SELECT count(agentcache.add_turn('bud-1', r, c)) AS added FROM (VALUES
  ('system', 'You are the assistant of Clínica Santa Clara. Answer in the patient''s language; be brief.'),
  ('user', 'Olá! Gostaria de marcar uma consulta para amanhã às 14h, é possível?'),
  ('assistant', 'Claro! Vou verificar a agenda da Dra. Souza para amanhã.'),
  ('tool', '{"slots": ["14:00", "15:30"], "doctor": "Dra. Souza"}'),
  ('assistant', 'Temos 14:00 e 15:30 com a Dra. Souza. Qual prefere?'),
  ('user', '14:00, por favor. Meu nome é João Pereira.'),
  ('assistant', 'Perfeito, João! Consulta confirmada para amanhã às 14:00. 👍'),
  ('user', 'Obrigado! Preciso levar algum exame?'),
  ('tool', '{"requirements": ["documento com foto", "carteirinha do convênio"]}'),
  ('assistant', 'Traga um documento com foto e a carteirinha do convênio.')) v(r, c);

-- the seqs a window holds, in order
CREATE FUNCTION bud_seqs(ctx jsonb) RETURNS bigint[] LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg((e->>'seq')::bigint ORDER BY o), '{}') FROM jsonb_array_elements(ctx) WITH ORDINALITY x(e, o)
$$;
-- the reference: the newest max_turns turns, then the longest newest suffix
-- whose Σ (token_count + overhead) fits max_tokens — computed in SQL
CREATE FUNCTION bud_expected(s text, max_turns int, max_tokens int, overhead int, enc text) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
  WITH w AS (SELECT seq, agentcache.token_count(content, enc) + overhead AS cost FROM agentcache.turns
              WHERE session_id = s ORDER BY seq DESC LIMIT max_turns),
       c AS (SELECT seq, sum(cost) OVER (ORDER BY seq DESC) AS run FROM w)
  SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM c WHERE run <= max_tokens
$$;

-- every budget from 0 to 250 tokens, both encodings, two overheads: the
-- window is the reference's (warm session: the counts are cached)
SELECT agentcache.warm_session('bud-1') AS cached_turns;
SET agentcache.token_encoding = 'o200k_base';
SET agentcache.turn_token_overhead = 4;
SELECT 'o200k_base' AS enc, 4 AS overhead, count(*) AS budgets,
       count(*) FILTER (WHERE bud_seqs(agentcache.get_context('bud-1', 30, NULL, b)) = bud_expected('bud-1', 30, b, 4, 'o200k_base')) AS as_reference
  FROM generate_series(0, 250) b;
SET agentcache.token_encoding = 'o200k_base';
SET agentcache.turn_token_overhead = 0;
SELECT 'o200k_base' AS enc, 0 AS overhead, count(*) AS budgets,
       count(*) FILTER (WHERE bud_seqs(agentcache.get_context('bud-1', 30, NULL, b)) = bud_expected('bud-1', 30, b, 0, 'o200k_base')) AS as_reference
  FROM generate_series(0, 250) b;
SET agentcache.token_encoding = 'cl100k_base';
SET agentcache.turn_token_overhead = 4;
SELECT 'cl100k_base' AS enc, 4 AS overhead, count(*) AS budgets,
       count(*) FILTER (WHERE bud_seqs(agentcache.get_context('bud-1', 30, NULL, b)) = bud_expected('bud-1', 30, b, 4, 'cl100k_base')) AS as_reference
  FROM generate_series(0, 250) b;
SET agentcache.token_encoding = 'cl100k_base';
SET agentcache.turn_token_overhead = 0;
SELECT 'cl100k_base' AS enc, 0 AS overhead, count(*) AS budgets,
       count(*) FILTER (WHERE bud_seqs(agentcache.get_context('bud-1', 30, NULL, b)) = bud_expected('bud-1', 30, b, 0, 'cl100k_base')) AS as_reference
  FROM generate_series(0, 250) b;
RESET agentcache.token_encoding;
RESET agentcache.turn_token_overhead;

-- get_turns: the tokens column is token_count(content) under the encoding
SELECT seq, role, tokens, tokens = agentcache.token_count(content) AS exact FROM agentcache.get_turns('bud-1');
SET agentcache.token_encoding = 'cl100k_base';
SELECT count(*) FILTER (WHERE tokens = agentcache.token_count(content, 'cl100k_base')) AS exact_cl100k, count(*)
  FROM agentcache.get_turns('bud-1');
RESET agentcache.token_encoding;

-- a budget cutting the window about in half, as LangChain's trimMessages
-- (strategy "last", includeSystem, startOn "human")
SELECT bud_seqs(agentcache.get_context('bud-1', max_tokens => 80)) AS last_80;
SELECT bud_seqs(agentcache.get_context('bud-1', max_tokens => 80, keep_system => true)) AS with_system;
SELECT bud_seqs(agentcache.get_context('bud-1', max_tokens => 80, keep_system => true, start_on_user => true)) AS langchain_style;
SELECT e->>'role' AS role, e->>'content' AS content
  FROM jsonb_array_elements(agentcache.get_context('bud-1', max_tokens => 80, keep_system => true, start_on_user => true)) e;
SELECT seq, role, tokens FROM agentcache.get_turns('bud-1', max_tokens => 80, keep_system => true, start_on_user => true);
-- the system turn counts against max_tokens and max_chars, not max_turns; if
-- it alone exceeds either, the window is empty
SELECT bud_seqs(agentcache.get_context('bud-1', 2, keep_system => true)) AS two_turns_and_the_system;
SELECT agentcache.token_count(content) + 4 AS system_cost FROM agentcache.turns WHERE session_id = 'bud-1' AND seq = 1;
SELECT bud_seqs(agentcache.get_context('bud-1', max_tokens => 22, keep_system => true)) AS system_alone_fits,
       bud_seqs(agentcache.get_context('bud-1', max_tokens => 21, keep_system => true)) AS system_too_big;
SELECT bud_seqs(agentcache.get_context('bud-1', max_chars => 89, keep_system => true)) AS chars_exact,
       bud_seqs(agentcache.get_context('bud-1', max_chars => 88, keep_system => true)) AS chars_too_few;
-- start_on_user alone: a window that would start on a tool turn starts after it
SELECT bud_seqs(agentcache.get_context('bud-1', 2)) AS newest_two,
       bud_seqs(agentcache.get_context('bud-1', 2, start_on_user => true)) AS on_user,
       bud_seqs(agentcache.get_context('bud-1', 3, start_on_user => true)) AS three_on_user;
-- a session without a system turn: keep_system keeps nothing more
SELECT agentcache.add_turn('bud-2', 'user', 'oi') AS s1, agentcache.add_turn('bud-2', 'assistant', 'olá!') AS s2;
SELECT bud_seqs(agentcache.get_context('bud-2', keep_system => true)) AS no_system;
-- the first system turn is kept when newer system turns exist, cached or not
SELECT agentcache.add_turn('bud-2', 'system', 'first rule') AS s3, agentcache.add_turn('bud-2', 'system', 'second rule') AS s4,
       agentcache.add_turn('bud-2', 'user', 'e agora?') AS s5;
SELECT bud_seqs(agentcache.get_context('bud-2', 1, keep_system => true)) AS cached;
SELECT agentcache.end_session('bud-2') AS dropped;
SELECT bud_seqs(agentcache.get_context('bud-2', 1, keep_system => true)) AS from_table;
SELECT bud_seqs(agentcache.get_context('bud-2', 1, keep_system => true)) AS reloaded;
-- in the transaction that adds it, the system turn is already the first one
BEGIN;
SELECT agentcache.add_turn('bud-3', 'user', 'hello') AS s1, agentcache.add_turn('bud-3', 'system', 'be kind') AS s2,
       agentcache.add_turn('bud-3', 'assistant', 'hi!') AS s3;
SELECT bud_seqs(agentcache.get_context('bud-3', 1, keep_system => true)) AS pending;
COMMIT;
SELECT bud_seqs(agentcache.get_context('bud-3', 1, keep_system => true)) AS committed;

-- inbound: the context shaped as get_context with the same arguments
SELECT bud_seqs(r->'context') AS inbound_context,
       bud_seqs(r->'context') = bud_seqs(agentcache.get_context('bud-1', 30, NULL, 60, true, true)) AS as_get_context
  FROM agentcache.inbound('no-such-instance', 'bud-msg-1', 'bud-1', 'Até amanhã!', max_tokens => 60, keep_system => true,
                          start_on_user => true) r;
SELECT agentcache.dedup_complete('bud-msg-1');

-- errors and 0.1.0 calls
\set VERBOSITY terse
SELECT agentcache.get_context('bud-1', 5, NULL, -1);
SELECT * FROM agentcache.get_turns('bud-1', 5, -1);
SELECT agentcache.inbound('x', 'bud-msg-2', 'bud-1', 'hi', 5, -1);
\set VERBOSITY default
SELECT jsonb_array_length(agentcache.get_context('bud-1', 3, 1000)) AS old_call,
       jsonb_array_length(agentcache.get_context('bud-1', 3, NULL, NULL, NULL, NULL)) AS nulls_are_defaults;

-- clean up
SELECT agentcache.forget_session(s) FROM (VALUES ('bud-1'), ('bud-2'), ('bud-3')) v(s);
DELETE FROM agentcache.dedup WHERE message_id LIKE 'bud-msg-%';
DROP FUNCTION bud_seqs(jsonb);
DROP FUNCTION bud_expected(text, int, int, int, text);
