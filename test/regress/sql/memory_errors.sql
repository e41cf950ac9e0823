--
-- memory_errors: every documented SQLSTATE of the conversation-memory
-- functions, the order in which they win, and the GUC limits.
--
SET TimeZone = 'UTC';


-- ---------------------------------------------------------------- NULL arguments: 22004
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.add_turn(NULL, 'user', 'x')$$),
  ($$SELECT agentcache.add_turn('err-1', NULL, 'x')$$),
  ($$SELECT agentcache.add_turn('err-1', 'user', NULL)$$),
  ($$SELECT agentcache.add_turn('err-1', 'user', NULL, '{}')$$),
  ($$SELECT agentcache.get_context(NULL)$$),
  ($$SELECT agentcache.get_context(NULL, 5, 100)$$),
  ($$SELECT count(*) FROM agentcache.get_turns(NULL)$$),
  ($$SELECT count(*) FROM agentcache.get_turns(NULL, 5)$$),
  ($$SELECT agentcache.warm_session(NULL)$$),
  ($$SELECT agentcache.end_session(NULL)$$),
  ($$SELECT agentcache.forget_session(NULL)$$)
) v(q);
-- NULL where the contract gives it a meaning is no error
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.add_turn('err-1', 'user', 'meta null', NULL)$$),
  ($$SELECT jsonb_array_length(agentcache.get_context('err-1', NULL, NULL))$$),
  ($$SELECT count(*) FROM agentcache.get_turns('err-1', NULL)$$)
) v(q);
-- nothing was written by the failed calls
SELECT seq, content FROM agentcache.turns WHERE session_id = 'err-1' ORDER BY seq;

-- ---------------------------------------------------------------- role: 22023
SELECT replace(r, chr(8203), '<U+200B>') AS role,
       sqlstate_of(format('SELECT agentcache.add_turn(%L, %L, %L)', 'err-2', r, 'x'))
  FROM unnest(ARRAY['User', 'USER', 'Assistant', '', ' user', 'user ', 'bot', 'function',
                    'developer', 'us' || 'er' || chr(8203)]) r;
-- the four valid roles
SELECT r AS role, sqlstate_of(format('SELECT agentcache.add_turn(%L, %L, %L) > 0', 'err-2', r, 'x'))
  FROM unnest(ARRAY['user', 'assistant', 'system', 'tool']) r;
SELECT role FROM agentcache.turns WHERE session_id = 'err-2' ORDER BY seq;

-- ---------------------------------------------------------------- session_id > 256 bytes: 54000
-- 256 bytes is accepted, 257 is not; multibyte characters count in bytes
SELECT octet_length(repeat('x', 256)) AS b256, octet_length(repeat('x', 257)) AS b257,
       octet_length(repeat('é', 128)) AS e128, octet_length(repeat('é', 129)) AS e129,
       char_length(repeat('é', 129)) AS e129_chars,
       octet_length(repeat('😀', 64)) AS emoji64, octet_length('x' || repeat('😀', 64)) AS emoji64x;
SELECT k, f, sqlstate_of(format(f, id)) AS result
  FROM (VALUES ('257 x', repeat('x', 257)),
               ('129 é', repeat('é', 129)),
               ('x + 64 emoji', 'x' || repeat('😀', 64))) AS ids(k, id),
       (VALUES ('SELECT agentcache.add_turn(%L, ''user'', ''x'')'),
               ('SELECT agentcache.get_context(%L)'),
               ('SELECT count(*) FROM agentcache.get_turns(%L)'),
               ('SELECT agentcache.warm_session(%L)'),
               ('SELECT agentcache.end_session(%L)'),
               ('SELECT agentcache.forget_session(%L)')) AS fns(f)
 ORDER BY k, f;
-- exactly 256 bytes works everywhere
SELECT k, f, sqlstate_of(format(f, id)) AS result
  FROM (VALUES ('256 x', repeat('x', 256)),
               ('128 é', repeat('é', 128)),
               ('64 emoji', repeat('😀', 64))) AS ids(k, id),
       (VALUES ('SELECT agentcache.add_turn(%L, ''user'', ''x'')'),
               ('SELECT agentcache.get_context(%L) = ''[]'''),
               ('SELECT count(*) FROM agentcache.get_turns(%L)'),
               ('SELECT agentcache.warm_session(%L)'),
               ('SELECT agentcache.end_session(%L)'),
               ('SELECT agentcache.forget_session(%L)')) AS fns(f)
 ORDER BY k, f;
SELECT count(*) FROM agentcache.turns WHERE octet_length(session_id) > 200;

-- ---------------------------------------------------------------- content > max_turn_bytes: 54000
SET agentcache.max_turn_bytes = '1kB';
SHOW agentcache.max_turn_bytes;
SELECT sqlstate_of($$SELECT agentcache.add_turn('err-3', 'user', repeat('a', 1024))$$) AS exactly_1024;
SELECT sqlstate_of($$SELECT agentcache.add_turn('err-3', 'user', repeat('a', 1025))$$) AS bytes_1025;
-- bytes, not characters: 513 two-byte characters are 1026 bytes
SELECT sqlstate_of($$SELECT agentcache.add_turn('err-3', 'user', repeat('é', 513))$$) AS e513;
SELECT sqlstate_of($$SELECT agentcache.add_turn('err-3', 'user', repeat('é', 512))$$) AS e512;
SELECT sqlstate_of($$SELECT agentcache.add_turn('err-3', 'user', repeat('😀', 257))$$) AS emoji257;
SET agentcache.max_turn_bytes = 2048;
SELECT sqlstate_of($$SELECT agentcache.add_turn('err-3', 'user', repeat('a', 2048))$$) AS at_2048;
SELECT sqlstate_of($$SELECT agentcache.add_turn('err-3', 'user', repeat('a', 2049))$$) AS over_2048;
RESET agentcache.max_turn_bytes;
SELECT sqlstate_of($$SELECT agentcache.add_turn('err-3', 'user', repeat('a', 1025))$$) AS default_1mb;
SELECT sqlstate_of($$SELECT agentcache.add_turn('err-3', 'user', repeat('a', 1048577))$$) AS over_1mb;
SELECT seq, octet_length(content) FROM agentcache.turns WHERE session_id = 'err-3' ORDER BY seq;

-- ---------------------------------------------------------------- max_turns / max_chars: 22023
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.get_context('err-2', 0)$$),
  ($$SELECT agentcache.get_context('err-2', -1)$$),
  ($$SELECT agentcache.get_context('err-2', -2147483648)$$),
  ($$SELECT agentcache.get_context('err-2', NULL, -1)$$),
  ($$SELECT agentcache.get_context('err-2', 5, -1)$$),
  ($$SELECT agentcache.get_context('err-nobody', 0)$$),
  ($$SELECT agentcache.get_context('err-nobody', NULL, -1)$$),
  ($$SELECT count(*) FROM agentcache.get_turns('err-2', 0)$$),
  ($$SELECT count(*) FROM agentcache.get_turns('err-2', -5)$$),
  ($$SELECT count(*) FROM agentcache.get_turns('err-nobody', 0)$$)
) v(q);
-- the boundary values that are valid
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT jsonb_array_length(agentcache.get_context('err-2', 1))$$),
  ($$SELECT jsonb_array_length(agentcache.get_context('err-2', 2147483647))$$),
  ($$SELECT jsonb_array_length(agentcache.get_context('err-2', NULL, 0))$$),
  ($$SELECT jsonb_array_length(agentcache.get_context('err-2', NULL, 2147483647))$$),
  ($$SELECT count(*) FROM agentcache.get_turns('err-2', 1)$$),
  ($$SELECT count(*) FROM agentcache.get_turns('err-2', 2147483647)$$)
) v(q);

-- ---------------------------------------------------------------- error order
-- 22004 (NULL) beats every argument-value error
SELECT q, left(sqlstate_of(q), 5) AS sqlstate FROM (VALUES
  ($$SELECT agentcache.add_turn(NULL, 'bad', NULL)$$),
  ($$SELECT agentcache.add_turn(repeat('x', 300), NULL, 'x')$$),
  ($$SELECT agentcache.add_turn(repeat('x', 300), 'bad', NULL)$$),
  ($$SELECT agentcache.add_turn('err-4', 'bad', NULL)$$),
  ($$SELECT agentcache.add_turn('err-4', NULL, repeat('a', 2000000))$$),
  ($$SELECT agentcache.get_context(NULL, 0, -1)$$),
  ($$SELECT count(*) FROM agentcache.get_turns(NULL, 0)$$)
) v(q);
-- 22023 and 54000 are one class: one of them
SELECT q, left(sqlstate_of(q), 5) IN ('22023', '54000') AS argument_error FROM (VALUES
  ($$SELECT agentcache.add_turn(repeat('x', 300), 'bad', 'x')$$),
  ($$SELECT agentcache.add_turn('err-4', 'bad', repeat('a', 2000000))$$),
  ($$SELECT agentcache.add_turn(repeat('x', 300), 'user', repeat('a', 2000000))$$),
  ($$SELECT agentcache.get_context(repeat('x', 300), 0)$$),
  ($$SELECT agentcache.get_context(repeat('x', 300), 1, -1)$$),
  ($$SELECT count(*) FROM agentcache.get_turns(repeat('x', 300), 0)$$)
) v(q);
-- argument errors beat 25006 (read-only)
BEGIN READ ONLY;
SELECT q, sqlstate_of(q) FROM (VALUES
  ($$SELECT agentcache.add_turn(NULL, 'user', 'x')$$),
  ($$SELECT agentcache.add_turn('err-4', 'User', 'x')$$),
  ($$SELECT agentcache.add_turn(repeat('x', 257), 'user', 'x')$$),
  ($$SELECT agentcache.add_turn('err-4', 'user', repeat('a', 2000000))$$),
  ($$SELECT agentcache.add_turn('err-4', 'user', 'x')$$),
  ($$SELECT agentcache.forget_session(NULL)$$),
  ($$SELECT agentcache.forget_session(repeat('x', 257))$$),
  ($$SELECT agentcache.forget_session('err-4')$$)
) v(q);
COMMIT;
SELECT count(*) FROM agentcache.turns WHERE session_id = 'err-4';

-- the errors as a client sees them (message, detail)
SELECT agentcache.add_turn('err-5', 'User', 'x');
SELECT agentcache.add_turn(repeat('x', 257), 'user', 'x');
SELECT agentcache.get_context(NULL);
SELECT agentcache.get_context('err-5', 0);

-- ---------------------------------------------------------------- GUCs
SHOW agentcache.session_memory;
SHOW agentcache.session_turns;
SHOW agentcache.context_turns;
SHOW agentcache.max_turn_bytes;
SELECT name, setting, unit, context, vartype, min_val, boot_val,
       CASE WHEN name = 'agentcache.max_turn_bytes' THEN max_val END AS max_val
  FROM pg_settings
 WHERE name IN ('agentcache.session_memory', 'agentcache.session_turns',
                'agentcache.context_turns', 'agentcache.max_turn_bytes')
 ORDER BY name;
-- max_turn_bytes: minimum 1kB, maximum 1GB, memory units
-- (PostgreSQL 17 added units to the range this error prints, so only the
-- SQLSTATE is shown; the range itself is in pg_settings above)
\set VERBOSITY sqlstate
SET agentcache.max_turn_bytes = '512';
SET agentcache.max_turn_bytes = '1023B';
\set VERBOSITY default
SET agentcache.max_turn_bytes = '2GB';
SET agentcache.max_turn_bytes = '1GB';
SHOW agentcache.max_turn_bytes;
SET agentcache.max_turn_bytes = '64kB';
SHOW agentcache.max_turn_bytes;
SET agentcache.max_turn_bytes = 'lots';
RESET agentcache.max_turn_bytes;
SHOW agentcache.max_turn_bytes;
-- context_turns: user-settable, at least 1
SET agentcache.context_turns = 0;
SET agentcache.context_turns = -1;
SET agentcache.context_turns = 1;
SHOW agentcache.context_turns;
RESET agentcache.context_turns;
-- postmaster GUCs cannot be changed in a session
SET agentcache.session_memory = '16MB';
SET agentcache.session_turns = 10;
\set VERBOSITY sqlstate
ALTER SYSTEM SET agentcache.session_memory = '512kB';
\set VERBOSITY default
SHOW agentcache.session_memory;
-- the prefix is reserved
SET agentcache.no_such_setting = 1;

-- ---------------------------------------------------------------- cleanup
SELECT agentcache.forget_session(s) AS deleted
  FROM unnest(ARRAY['err-1', 'err-2', 'err-3', 'err-4', 'err-5', repeat('x', 256),
                    repeat('é', 128), repeat('😀', 64)]) s;
SELECT count(*) AS rows_left FROM agentcache.turns;
