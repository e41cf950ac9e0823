--
-- tokens: token_count(content, encoding) — exact counts as tiktoken's
-- encode_ordinary (API.md 0.2.0, "Token budgets"). The counts below agree
-- with gpt-tokenizer 4.0.0 (test/tokenizer/gen.mjs); the differential test
-- (test/tokenizer/run.sh) compares 10,000+ strings per encoding.
--
SELECT agentcache.token_count('Hello, world!') AS o200k_default,
       agentcache.token_count('Hello, world!', 'o200k_base') AS o200k,
       agentcache.token_count('Hello, world!', 'cl100k_base') AS cl100k;
SELECT agentcache.token_count('') AS empty, agentcache.token_count(' ') AS space,
       agentcache.token_count(repeat('a', 4096)) AS a4096;
-- special-token text is ordinary text
SELECT agentcache.token_count('<|endoftext|>', 'o200k_base') AS o200k, agentcache.token_count('<|endoftext|>', 'cl100k_base') AS cl100k;
-- why characters are a poor proxy: Portuguese, Japanese, emoji (a label is
-- printed, not the text: psql's display width of ZWJ sequences differs
-- between PostgreSQL versions)
SELECT label, agentcache.token_count(s, 'o200k_base') AS o200k, agentcache.token_count(s, 'cl100k_base') AS cl100k,
       length(s) AS chars
  FROM (VALUES ('portuguese', 'Olá! Gostaria de marcar uma consulta para amanhã às 14h, é possível?'),
               ('japanese', 'こんにちは、世界！お元気ですか？'), ('zwj family', '👨‍👩‍👧‍👦 family'),
               ('contractions', 'I''m DON''T we''LL'), ('code', E'def f(x):\n    return x\n')) v(label, s);
-- errors: an unknown encoding 22023, NULL arguments 22004
\set VERBOSITY terse
SELECT agentcache.token_count('x', 'p50k_base');
SELECT agentcache.token_count('x', 'O200K_BASE');
SELECT agentcache.token_count(NULL);
SELECT agentcache.token_count('x', NULL);
\set VERBOSITY default
-- declared IMMUTABLE PARALLEL SAFE, callable by PUBLIC
SELECT p.provolatile, p.proparallel, p.proisstrict, pg_catalog.pg_get_function_arguments(p.oid) AS args,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p WHERE p.oid = 'agentcache.token_count(text, text)'::regprocedure;
-- usable in an expression index and a generated column
CREATE TABLE tok_docs (id int PRIMARY KEY, body text,
                       tokens int GENERATED ALWAYS AS (agentcache.token_count(body)) STORED);
INSERT INTO tok_docs VALUES (1, 'short'), (2, repeat('word ', 100));
SELECT id, tokens FROM tok_docs ORDER BY id;
DROP TABLE tok_docs;
-- many rows: the rank table is loaded once per process, never per call
SELECT sum(agentcache.token_count('row ' || g || ' of the batch: olá, mundo!')) AS batch_tokens
  FROM generate_series(1, 20000) g;
