#!/usr/bin/env python3
"""Seeded, reproducible SQL fuzzer for the agentcache extension.

Calls every function of schema agentcache (discovered from pg_proc at run
time) with hostile arguments, as three roles (the superuser that owns the
extension, an application role set up with agentcache.grant_app, and a role
with nothing but USAGE on the schema), fires the trigger functions through
DML on small tables, and asserts after every statement:

  * success, or an ERROR whose SQLSTATE the contract (/work/shared/API.md,
    see README.md here) documents for that call; XX000 and 40P01 never;
  * no backend crash (backend pids, postmaster pid and start time unchanged),
    no hang (server statement_timeout plus a client-side watchdog);
  * every so many cases and at the end: the caches equal their tables
    (get_context/get_turns vs agentcache.turns, lookup vs the map's query,
    get/get_stale vs agentcache.entries, dedup_state vs agentcache.dedup),
    health() and stats() succeed.

Every case draws from its own random.Random seeded with (seed, case number),
so a case's SQL depends on nothing but the seed and its number: --case-from K
replays case K (and following) exactly, --print-only shows the SQL.

Usage: fuzz.py [--seed N] [--cases N] [--case-from K] [--dsn CONNINFO]
The cluster comes from libpq's environment (PGHOST, PGPORT, PGDATABASE) or
--dsn. The roles fuzz_app, fuzz_nobody and fuzz_extra are created if absent
and must be able to log in (run.sh uses a throwaway cluster with trust auth).
"""

import argparse
import os
import random
import sys
import threading
import time

import psycopg

# ----------------------------------------------------------------------------
# SQLSTATEs (see README.md for where API.md documents each one)

NULL_ARG = '22004'          # NULL required argument
BAD_VALUE = '22023'         # invalid argument value (role, max_turns, ttl, refresh, template ...)
TOO_LONG = '54000'          # session_id/message_id > 256 B, namespace/map name > 63 B, key > 1024 B, content
NO_PRIV = '42501'           # admin function, missing table privilege, not the map's owner
UNDEFINED = '42704'         # unknown map
NOT_PREREQ = '55000'        # claim not held (dedup_complete / dedup_fail / outbound)
CLAIM_LIMIT = '53400'       # agentcache.max_claims_per_session
READ_ONLY = '25006'         # a write in a READ ONLY transaction
NOT_SUPPORTED = '0A000'     # PREPARE TRANSACTION of a claim/turn/namespace change; fetch query not plain
MISMATCH = '42804'          # map query not (text, jsonb); fetch query not one column
CARDINALITY = '21000'       # fetch query returned more than one row
DUPLICATE = '23505'         # map query returned a duplicate key
MAP_MEMORY = '53200'        # map larger than agentcache.map_memory
UNDEF_COLUMN = '42703'      # invalidate_trigger template names an unknown column
TRIGGER_PROTO = '39P01'     # trigger function used wrongly (statement level, BEFORE, foreign table)
CANCELED = '57014'          # statement_timeout: only for the deliberate pg_sleep queries
SERIALIZATION = '40001'     # only inside REPEATABLE READ / SERIALIZABLE cases

# allowed for every call of an agentcache function (API.md: "When several
# errors apply ..." lists 22004, 22023/54000, 55000, 25006, 42704, 42501; the
# context-dependent ones are added where their context applies)
COMMON = {NULL_ARG, BAD_VALUE, TOO_LONG, NO_PRIV}

PER_FUNCTION = {
    'add_turn': set(),
    'get_context': set(),
    'get_turns': set(),
    'warm_session': set(),
    'end_session': set(),
    'forget_session': set(),
    'put': set(),
    'get': set(),
    'get_stale': set(),
    'fetch': {MISMATCH, CARDINALITY, NOT_SUPPORTED},
    'invalidate': set(),
    'invalidate_tag': set(),
    'clear': set(),
    'clear_all': set(),
    'configure_namespace': set(),
    'dedup_begin': {CLAIM_LIMIT},
    'dedup_complete': {NOT_PREREQ},
    'dedup_fail': {NOT_PREREQ},
    'dedup_state': set(),
    'dedup_release': set(),
    'reply_sent': set(),
    'pending_replies': set(),
    'define_map': {MISMATCH, DUPLICATE, MAP_MEMORY},
    'lookup': {UNDEFINED},
    'resolve_instance': {UNDEFINED},
    'refresh_map': {UNDEFINED, MISMATCH, DUPLICATE, MAP_MEMORY},
    'drop_map': {UNDEFINED},
    'inbound': {CLAIM_LIMIT},
    'outbound': {NOT_PREREQ},
    'stats': set(),
    'health': set(),
    'reset_stats': set(),
    'grant_app': {UNDEFINED},      # a regrole that names no role (API.md: 42704 for an unknown object)
    '_reset_memory': set(),
    '_boundary_selftest': set(),   # per kind, see selftest_allowed
}
# a trigger function called directly (not as a trigger)
DIRECT_TRIGGER_CALL = {NOT_SUPPORTED, TRIGGER_PROTO, NO_PRIV}
# DML on a table carrying agentcache triggers: unknown column, wrong trigger kind,
# bad template / missing map name, a tag over a limit, no privilege, unknown map
TRIGGER_FIRE = {UNDEF_COLUMN, TRIGGER_PROTO, BAD_VALUE, TOO_LONG, NO_PRIV, UNDEFINED}
NEVER = {'XX000', '40P01'}

# ----------------------------------------------------------------------------
# value pools

def q(s):
    """An SQL string literal (standard_conforming_strings = on)."""
    return "'" + s.replace("'", "''") + "'"


INJECTION = [
    "'; DROP TABLE fz_t1; --", "$$", "$$; DROP TABLE fz_t1; $$", "\\", "\\'", "%s", "%n%s%x%d",
    "{{", "}}", "{", "}", ")", "(", "'", "''", '"', '";--', "NULL", "null", "' OR '1'='1",
    "*/ /*", "--", ";", "1); SELECT pg_sleep(10); --", "%", "_", "\\x00", "E'\\\\'",
    "${x}", "{{tenant}}", "$1", "?", "\\N", "agentcache.turns", "pg_catalog.", "\"; DROP ROLE postgres; --",
]
UNICODE = [
    "e\u0301\u0302\u0303\u0304", "Z\u0351\u0352\u0357\u0358\u035b\u0310", "\u202eevil\u202c", "\u0645\u0631\u062d\u0628\u0627",
    "\u05e2\u05d1\u05e8\u05d9\u05ea", "\U0001f600", "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0010ffff", "\uffff", "\ufffe", "\ufeff", "\u200b", "\u200d", "\u2028\u2029", "\U0001d518\U0001d52b\U0001d526",
    "\U0001f1fa\U0001f1f8", "\x7f", "\x01\x02\x03", "\t\n\r", "\u01c5", "\u00df", "\u0130", "\u00a0", "\u4f1a\u8bdd",
    "\U00020000\U0002a6d6", "\ud7ff", "\ue000", "\U000e0001", "a\u0300" * 50,
]
SESSIONS = ['s1', 's2', 's3', 's4', 's5', 'sess-\u00fcn\u00ef', '\u4f1a\u8bdd-7', "o'brien", 'e\u0301',
            '\U0001f600' * 64, 'x' * 256]
TURN_ROLES = ['user', 'assistant', 'system', 'tool']
BAD_TURN_ROLES = ['User', 'USER', 'user ', ' user', 'robot', '', 'us\u00e9r', 'user\u200b', 'tool;', 'assistant\n']
NAMESPACES = ['ns1', 'ns2', 'ns3', 'ns4', 'ns-\u00fc', 'n' * 63, '\U0001f600' * 15 + 'abc']
KEYS = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', '\u043a\u043b\u044e\u0447', "k'1", 'k' * 1024, '\U0001f600' * 256, 'K1']
TAGS = ['t1', 't2', 't3', 'tenant:tenant-1', 'tenant:tenant-2', 't:1', 't:2', 'static', '\U0001f600', "t'x", '']
MESSAGES = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'msg-\u00fc', 'x' * 256]
INSTANCES = ['inst-1', 'inst-2', 'inst-3', 'inst-49', 'inst-50', 'inst-51', 'nope', '']
MAP_NAMES = ['m1', 'm2', 'm3', 'instances', '\u043a\u0430\u0440\u0442\u0430', 'a' * 63, "o'map"]
TEXTS = ['hello', 'Hi there!', '', ' ', 'line1\nline2', '\U0001f600' * 100, 'lorem ipsum dolor ' * 50,
         "it's", 'tab\there', '\\', 'NULL']
KINDS = ['ok', 'sql', 'pg', 'bad_alloc', 'lwlock', 'cxx', 'cxx_lwlock', 'nope', '']
ROLE_TARGETS = ["'fuzz_app'", "'fuzz_extra'", "'pg_monitor'", "'postgres'", "'-'", "'0'", "'4294967295'",
                "'nosuch_role'", "'\"x; DROP TABLE fz_t1; --\"'", "'x; DROP TABLE fz_t1; --'", "''", "'PUBLIC'"]
# literals PostgreSQL itself rejects when casting the argument to regrole
ROLE_CAST_ERRORS = {"'nosuch_role'": {'42704'}, "'\"x; DROP TABLE fz_t1; --\"'": {'42704'},
                    "'x; DROP TABLE fz_t1; --'": {'42602', '42704'}, "''": {'42602', '42704'},
                    "'PUBLIC'": {'42704'}}

INTERVALS = ["'1 hour'", "'1 day'", "'10 min'", "'1 second'", "'1 microsecond'", "'0'", "'-1 day'",
             "'-1 microsecond'", "'300000 years'", "'1000000 years'", "'-178000000 years'", "'178000000 years'",
             "'178956970 years'", "'1000000 years -365000000 days'", "'1 mon -29 days'", "'-1 mon 31 days'",
             "'2147483647 days'", "'-2147483648 days'", "'2562047788 hours'", "'-2562047788 hours'",
             "'1 year -1 microsecond'", "'P1Y2M3DT4H5M6S'", "'30 days'", "'1 mon'"]
# intervals certainly long enough that an entry put with them is fresh for the rest of the run
LONG_INTERVALS = {"'1 hour'", "'1 day'", "'10 min'", "'300000 years'", "'1000000 years'", "'178000000 years'",
                  "'178956970 years'", "'2147483647 days'", "'2562047788 hours'", "'P1Y2M3DT4H5M6S'",
                  "'30 days'", "'1 mon'"}
BAD_INTERVALS = {"'infinity'": {'22007', '22008'}, "'1 fortnight'": {'22007'}, "'178956971 years'": {'22008', '22015'},
                 "'9999999999999 hours'": {'22008', '22015'}}
INT4 = ['0', '-1', '1', '2', '3', '5', '10', '29', '30', '31', '100', '1000', '2147483647', '-2147483648']
INT8 = INT4 + ['9223372036854775807', '-9223372036854775808', '4294967296']
BAD_INT4 = {"'2147483648'": {'22003'}, "'abc'": {'22P02'}, "'1.5'": {'22P02'}}
BAD_INT8 = {"'9223372036854775808'": {'22003'}, "'x'": {'22P02'}}
JSON_VALUES = [
    "'1'", "'\"s\"'", "'null'", "'{}'", "'[]'", "'{\"a\": 1}'", "'[1, 2, 3]'", "'true'", "'1e308'", "'-0'",
    "'123456789012345678901234567890.123456789'", q('"\U0001f600e\u0301\\u00e9\\ud83d\\ude00"'),
    q('{"\u202e": "\U0010ffff", "": ""}'), "'{\"tenant\": \"tenant-1\", \"n\": [null, {}, []]}'",
    "to_jsonb(repeat('\U0001f600', 1000))", "'{\"a\": 1, \"a\": 2}'", "'\"\\\\\"'",
]
# deep, wide and large documents (picked less often: they make every later read of them slow)
BIG_JSON_VALUES = [
    "(repeat('[', 1000) || repeat(']', 1000))::jsonb", "(repeat('{\"a\":', 500) || '1' || repeat('}', 500))::jsonb",
    "(repeat('[', 10000) || repeat(']', 10000))::jsonb",
    "(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 10000) i)",
    "jsonb_build_object('big', repeat('x', 1048576))", "(SELECT jsonb_agg(i) FROM generate_series(1, 100000) i)",
]
BAD_JSON = {"'\"\\u0000\"'": {'22P05'}, "'{'": {'22P02'}, "'nan'": {'22P02'},
            "(repeat('[', 100000) || repeat(']', 100000))": {'54001'}}
TAG_ARRAYS = ["'{}'", "ARRAY['t1']", "ARRAY['t1', 't2']", "ARRAY['tenant:tenant-1']", "ARRAY['tenant:tenant-2', 't:1']",
              "ARRAY[NULL]::text[]", "ARRAY['t1', NULL]", "ARRAY['']", "ARRAY[" + q(INJECTION[0]) + "]",
              "(SELECT array_agg('t' || i) FROM generate_series(1, 1000) i)", "ARRAY[repeat('t', 100000)]",
              "'{{t1,t2},{t3,t4}}'", "'[2:3]={t1,t2}'", "ARRAY['\U0001f600', 'e\u0301']", "ARRAY['static', 'static']"]
BAD_TAG_ARRAYS = {"'{t1'": {'22P02'}, "'{{t1},{t2,t3}}'": {'22P02'}}

# fetch queries: (sql, SQLSTATEs the query itself may raise, source tables it writes, statement_timeout ms)
FETCH_QUERIES = [
    ("SELECT 1", set(), (), None),
    ("SELECT 'text'", set(), (), None),
    ("SELECT '{\"a\": 1}'::jsonb", set(), (), None),
    ("SELECT NULL", set(), (), None),
    ("SELECT 1 WHERE false", set(), (), None),
    ("SELECT 1;", set(), (), None),
    ("SELECT count(*) FROM public.fz_t1", set(), (), None),
    ("SELECT to_jsonb(t) FROM public.fz_t1 t WHERE id = 1", set(), (), None),
    ("SELECT to_jsonb(t) FROM public.fz_t1 t", {CARDINALITY}, (), None),
    ("SELECT s FROM public.fz_secret LIMIT 1", set(), (), None),
    ("SELECT 1, 2", set(), (), None),
    ("SELECT", set(), (), None),
    ("VALUES (1), (2)", set(), (), None),
    ("SELECT generate_series(1, 3)", set(), (), None),
    ("SELECT 1/0", {'22012'}, (), None),
    ("SELECT 'abc'::int", {'22P02'}, (), None),
    ("SELECT 2147483647 + 1", {'22003'}, (), None),
    ("SELECT '2020-13-45'::date", {'22008'}, (), None),
    ("commit", {'2D000'}, (), None),
    ("rollback", {'2D000'}, (), None),
    ("begin", {'25001'}, (), None),
    ("SAVEPOINT fz", {'3B000'}, (), None),
    ("VACUUM", {'25001'}, (), None),
    ("VACUUM public.fz_t1", {'25001'}, (), None),
    ("ANALYZE public.fz_t1", set(), (), None),
    ("SELECT 1; SELECT 2", {'42601'}, (), None),
    ("SELECT 1; COMMIT", {'42601'}, (), None),
    ("", {'42601'}, (), None),
    ("   ", {'42601'}, (), None),
    (";", {'42601'}, (), None),
    ("-- only a comment", {'42601'}, (), None),
    ("CREATE TABLE public.fz_ddl (a int)", {'42P07'}, (), None),
    ("DROP TABLE public.fz_t2", set(), (), None),
    ("CREATE TEMP TABLE fz_tmp (a int)", {'42P07'}, (), None),
    ("INSERT INTO public.fz_src VALUES ('fk1', '1') ON CONFLICT (key) DO UPDATE SET val = EXCLUDED.val RETURNING val",
     set(), ('fz_src',), None),
    ("DELETE FROM public.fz_src WHERE key = 'k9' RETURNING val", set(), ('fz_src',), None),
    ("UPDATE public.fz_src SET val = val RETURNING 1", {CARDINALITY}, ('fz_src',), None),
    ("SELECT pg_sleep(10)", {CANCELED}, (), 300),
    ("SELECT pg_sleep(0.001)", set(), (), None),
    ("SELECT set_config('statement_timeout', '0', false)", set(), (), None),
    ("SET statement_timeout = 0", set(), (), None),
    ("SET ROLE postgres", set(), (), None),
    ("RESET ROLE", set(), (), None),
    ("SET search_path = evil", set(), (), None),
    ("COPY public.fz_t1 TO STDOUT", set(), (), None),
    ("LISTEN fz", set(), (), None),
    ("NOTIFY fz", set(), (), None),
    ("PREPARE TRANSACTION 'fz'", set(), (), None),
    ("SELECT agentcache.fetch('ns1', 'k1', 'SELECT 1')", set(), (), None),
    ("SELECT agentcache.fetch('ns1', 'kr', 'SELECT agentcache.fetch(''ns1'', ''kr'', ''SELECT 1'')')", set(), (), None),
    ("SELECT agentcache.add_turn('s1', 'user', 'from fetch')", set(), (), None),
    ("SELECT agentcache.dedup_begin('m1')", {CLAIM_LIMIT}, (), None),
    ("SELECT agentcache.get_context('s1')", set(), (), None),
    ("SELECT agentcache.invalidate_tag('t1')", set(), (), None),
    ("SELECT agentcache.clear('ns1')", set(), (), None),
    ("SELECT repeat('x', 1048576)", set(), (), None),
    ("SELECT jsonb_agg(i) FROM generate_series(1, 100000) i", set(), (), None),
    ("SELECT '\"\\u0000\"'::jsonb", {'22P05'}, (), None),
    ("SELECT ROW(1, 'a')", set(), (), None),
    ("SELECT ARRAY[NULL, 1]", set(), (), None),
    ("SELECT 'NaN'::float8", set(), (), None),
    ("SELECT 'infinity'::timestamptz", set(), (), None),
    ("SELECT '1000000 years'::interval", set(), (), None),
    ("SELECT x FROM nonexistent_table", {'42P01'}, (), None),
    ("SELECT nosuchcol FROM public.fz_t1", {'42703'}, (), None),
    ("SELECT nosuchfunc()", {'42883'}, (), None),
    ("SELECT $1", {'42P02'}, (), None),
    ("EXPLAIN SELECT 1", {CARDINALITY}, (), None),
    ("SHOW search_path", set(), (), None),
    ("SELECT * FROM agentcache.turns LIMIT 1", set(), (), None),
    ("SELECT count(*) FROM agentcache.maps", set(), (), None),
    ("SELECT pg_sleep(0)", set(), (), None),            # a void column: 42804 (it was a 42883 from to_jsonb)
    ("SELECT textout('abc')", set(), (), None),         # a cstring column
    ("SELECT NULL::void", set(), (), None),
    ("TABLE public.fz_src LIMIT 1", set(), (), None),
    ("WITH d AS (DELETE FROM agentcache.entries WHERE false RETURNING 1) SELECT count(*) FROM d", set(), (), None),
    ("SELECT '\U0001f600e\u0301'::text", set(), (), None),
    ("SELECT 'x'::unknown", set(), (), None),
    ("SELECT '\\x00ff'::bytea", set(), (), None),
    ("SELECT int4range(1, 2)", set(), (), None),
    ("SELECT 'NaN'::numeric", set(), (), None),
    ("SELECT '{\"a\": [1, null]}'::json", set(), (), None),
    ("SELECT txid_current()", set(), (), None),
    ("SELECT NULL::internal", {'42846'}, (), None),
]

# map queries: (sql, SQLSTATEs the query itself may raise, source tables it reads, deterministic, timeout ms)
MAP_QUERIES = [
    ("SELECT key, val FROM public.fz_src", set(), ('fz_src',), True, None),
    ("SELECT key::varchar, val::json FROM public.fz_src", set(), ('fz_src',), True, None),
    ("SELECT key, val FROM fz_src", {'42P01'}, ('fz_src',), True, None),
    ("SELECT key, val FROM public.fz_src WHERE key LIKE 'k%'", set(), ('fz_src',), True, None),
    ("SELECT id::text, to_jsonb(t) FROM public.fz_t1 t", set(), ('fz_t1',), True, None),
    ("SELECT tenant, jsonb_build_object('n', count(*)) FROM public.fz_t1 GROUP BY tenant", set(), ('fz_t1',), True, None),
    ("SELECT 'inst-' || i, jsonb_build_object('clinic', i, 'tenant', 'tenant-' || (i % 3)) FROM generate_series(1, 50) i",
     set(), (), True, None),
    ("SELECT NULL::text, '{}'::jsonb UNION ALL SELECT 'a', '1'", set(), (), True, None),
    ("SELECT 'k' || i, to_jsonb(repeat('\u00e9', i)) FROM generate_series(1, 300) i", set(), (), True, None),
    ("SELECT k, v FROM (VALUES ('\U0001f600', '\"e\u0301\"'::jsonb), ('', 'null'::jsonb), ('K1', '[]')) t(k, v)",
     set(), (), True, None),
    ("SELECT s, to_jsonb(id) FROM public.fz_secret", set(), (), True, None),
    ("SELECT 'now', to_jsonb(clock_timestamp())", set(), (), False, None),
    ("SELECT 'a'::text, '1'::jsonb UNION ALL SELECT 'a', '2'", {DUPLICATE}, (), True, None),
    ("SELECT key, val FROM public.fz_src UNION ALL SELECT key, val FROM public.fz_src", {DUPLICATE}, ('fz_src',), True,
     None),
    ("SELECT 1, '{}'::jsonb", set(), (), True, None),
    ("SELECT 'a'::text", set(), (), True, None),
    ("SELECT 'a'::text, 'b'::text", set(), (), True, None),
    ("SELECT 'a'::text, '{}'::jsonb, 3", set(), (), True, None),
    ("SELECT", set(), (), True, None),
    ("SELECT 'k' || i, jsonb_build_object('pad', repeat('x', 200)) FROM generate_series(1, 20000) i", set(), (), True,
     None),
    ("SELECT 'a'::text, to_jsonb(pg_sleep(10))", {CANCELED}, (), True, 300),
    ("SELECT (1/0)::text, '{}'::jsonb", {'22012'}, (), True, None),
    ("SELECT x, y FROM nonexistent_table", {'42P01'}, (), True, None),
    ("commit", {'2D000'}, (), True, None),
    ("begin", {'25001'}, (), True, None),
    ("VACUUM", {'25001'}, (), True, None),
    ("SELECT 1; SELECT 2", {'42601'}, (), True, None),
    ("", {'42601'}, (), True, None),
    ("CREATE TABLE public.fz_ddl (a int)", {'42P07'}, (), True, None),
    ("INSERT INTO public.fz_src VALUES ('x', '1') RETURNING key, val", {DUPLICATE}, ('fz_src',), True, None),
    ("SELECT 'k'::text, agentcache.lookup('m1', 'k')", {UNDEFINED}, (), False, None),
    ("SELECT 'k'::text, to_jsonb(agentcache.refresh_map('m2'))", {UNDEFINED, NO_PRIV}, (), False, None),
    ("SELECT 'k'::text, agentcache.fetch('ns1', 'k1', 'SELECT 1')", set(), (), False, None),
    ("SELECT 'k'::text, agentcache.get_context('s1')", set(), (), False, None),
    ("SELECT '\"; DROP TABLE fz_t1; --'::text, '\"$$\"'::jsonb", set(), (), True, None),
]
# what a stored map query may raise when it is run again (refresh_map)
MAP_QUERY_STATES = set().union(*(m[1] for m in MAP_QUERIES)) - {CANCELED}
# a random text used as a query
RANDOM_QUERY_STATES = {'42601', '42P01', '42703', '42883'}

TRIGGER_TEMPLATES = ['tenant:{tenant}', 't:{id}', '{name}', '{data}', '{n}', '{tenant}:{name}', 'static', '',
                     '{nosuch}', '{', '}', '{{', '}}', '{{tenant}}', '{ tenant }', '{TENANT}', '{id}' * 100,
                     'x' * 10000, '{tenant', 'tenant}', '{}', '{ctid}', '{xmin}', '{tableoid}']
TABLES_OWNER = ['fz_t1', 'fz_t2']
TABLE_APP = 'fz_app_t'

FUNC_WEIGHT_TRIGGER = 0.2   # direct calls of trigger functions (0A000/39P01 expected)
# how often each function is picked (default 1); admin and internal functions are
# picked less often for the roles that may not run them (they get 42501)
FUNC_WEIGHTS = {'put': 3, 'get': 2, 'fetch': 3, 'add_turn': 2.5, 'get_context': 2, 'inbound': 2, 'outbound': 1.5,
                'dedup_begin': 2, 'dedup_complete': 1.5, 'define_map': 2, 'lookup': 2, 'refresh_map': 1.5,
                'clear_all': 0.2, '_reset_memory': 0.3, 'reset_stats': 0.5, 'grant_app': 0.6, 'health': 0.5,
                'stats': 0.5, 'clear': 0.5}
ADMIN = {'dedup_release', 'reset_stats', 'clear_all', 'define_map', 'drop_map', 'configure_namespace', 'grant_app',
         '_reset_memory', '_boundary_selftest'}


class Stmt:
    """One SQL statement of a case and what it may raise."""
    __slots__ = ('sql', 'label', 'allow', 'timeout', 'touches', 'post', 'track', 'is_call', 'dml_table')

    def __init__(self, sql, label, allow=(), timeout=None, touches=(), post=None, track=None, is_call=False,
                 dml_table=None):
        self.sql = sql
        self.label = label            # accounting label (function name, or <dml>, <ddl> ...)
        self.allow = set(allow)       # SQLSTATEs accepted besides success
        self.timeout = timeout        # statement_timeout in ms (None: the default)
        self.touches = tuple(touches)  # map source tables this statement may change
        self.post = post              # check run after success (autocommit only)
        self.track = track            # map bookkeeping event applied on success
        self.is_call = is_call
        self.dml_table = dml_table    # table whose triggers this statement fires


class Case:
    __slots__ = ('idx', 'role', 'mode', 'savepoints', 'end', 'stmts')

    def __init__(self, idx, role, mode, savepoints, end, stmts):
        self.idx, self.role, self.mode, self.savepoints, self.end, self.stmts = idx, role, mode, savepoints, end, stmts

    def script(self):
        lines = []
        if self.mode != 'auto':
            lines.append(self.begin_sql() + ';')
        for s in self.stmts:
            t = f"SET statement_timeout = {s.timeout};\n" if s.timeout else ''
            lines.append(t + s.sql + ';')
        if self.mode != 'auto':
            lines.append(self.end_sql() + ';')
            if self.end.startswith('prepare'):
                lines.append(f"{'COMMIT' if self.end == 'prepare_commit' else 'ROLLBACK'} PREPARED 'fz_{self.idx}';")
        return '\n'.join(lines)

    def begin_sql(self):
        return {'txn': 'BEGIN', 'ro': 'BEGIN READ ONLY', 'rr': 'BEGIN ISOLATION LEVEL REPEATABLE READ',
                'ser': 'BEGIN ISOLATION LEVEL SERIALIZABLE'}[self.mode]

    def end_sql(self):
        if self.end.startswith('prepare'):
            return f"PREPARE TRANSACTION 'fz_{self.idx}'"
        return 'COMMIT' if self.end == 'commit' else 'ROLLBACK'


class Func:
    __slots__ = ('name', 'args', 'argnames', 'argtypes', 'ndefaults', 'retset', 'trigger', 'identity')

    def __init__(self, name, argnames, argtypes, ndefaults, retset, trigger, identity):
        self.name, self.argnames, self.argtypes = name, argnames, argtypes
        self.ndefaults, self.retset, self.trigger, self.identity = ndefaults, retset, trigger, identity


class V:
    """A generated argument: an SQL expression, the cast errors it may raise, and notes."""
    __slots__ = ('expr', 'bad', 'note')

    def __init__(self, expr, bad=(), note=None):
        self.expr, self.bad, self.note = expr, set(bad), note


# ----------------------------------------------------------------------------
# argument generation

def boundary_text(rng, limit):
    """An expression for a string of limit-1, limit or limit+1 bytes, in 1- to 4-byte characters."""
    n = limit + rng.choice((-1, 0, 0, 1, 1))
    ch = rng.choice(('x', '\u00e9', '\u20ac', '\U0001f600'))
    w = len(ch.encode())
    k, pad = divmod(n, w)
    return f"(repeat({q(ch)}, {k}) || repeat('x', {pad}))"


def gen_text(rng, pool, limit=None, null_ok=True, hostile=0.4):
    r = rng.random()
    if r < 0.04 and null_ok:
        return V('NULL')
    if rng.random() >= hostile and pool:
        return V(q(rng.choice(pool)))
    k = rng.random()
    if k < 0.3:
        return V(q(rng.choice(INJECTION)))
    if k < 0.55:
        s = rng.choice(UNICODE)
        if rng.random() < 0.3:
            s = rng.choice(pool or ['x']) + s
        return V(q(s))
    if k < 0.65:
        return V("''")
    if k < 0.9:
        return V(boundary_text(rng, limit or rng.choice((63, 64, 256, 1024))))
    if k < 0.96:
        return V(rng.choice(("repeat('x', 1048576)", "repeat('x', 1048577)", "repeat('\u00e9', 524288)",
                             "repeat('\U0001f600', 262145)", "repeat('x', 100000)")))
    return V(rng.choice(("repeat('ab', 4000000)", "md5('x')", "chr(1114111)", "chr(65535)")))


def gen_interval(rng, null_ok=True):
    r = rng.random()
    if r < 0.12 and null_ok:
        return V('NULL')
    if r < 0.15:
        lit = rng.choice(sorted(BAD_INTERVALS))
        return V(lit, BAD_INTERVALS[lit], note=lit)
    lit = rng.choice(INTERVALS)
    return V(lit, note=lit)


def gen_int(rng, bits, pool=None):
    r = rng.random()
    if r < 0.15:
        return V('NULL')
    if r < 0.18:
        bad = BAD_INT4 if bits == 32 else BAD_INT8
        lit = rng.choice(sorted(bad))
        return V(lit, bad[lit])
    return V(rng.choice(pool or (INT4 if bits == 32 else INT8)))


def gen_json(rng, null_ok=True):
    r = rng.random()
    if r < 0.1 and null_ok:
        return V('NULL')
    if r < 0.13:
        lit = rng.choice(sorted(BAD_JSON))
        return V(lit, BAD_JSON[lit])
    if r < 0.17:
        return V(rng.choice(BIG_JSON_VALUES))
    return V(rng.choice(JSON_VALUES))


def gen_tags(rng):
    r = rng.random()
    if r < 0.1:
        return V('NULL')
    if r < 0.13:
        lit = rng.choice(sorted(BAD_TAG_ARRAYS))
        return V(lit, BAD_TAG_ARRAYS[lit])
    return V(rng.choice(TAG_ARRAYS))


def gen_query(rng, templates, random_states):
    """Returns V with note = (own states, touches, timeout, template index or None)."""
    if rng.random() < 0.15:
        v = gen_text(rng, [], hostile=1.0)
        if v.expr == 'NULL':
            return V('NULL', note=(set(), (), None, None))
        return V(v.expr, note=(set(random_states), (), None, None))
    i = rng.randrange(len(templates))
    t = templates[i]
    return V(q(t[0]), note=(set(t[1]), t[2] if len(t) == 4 else (), t[-1], i))


def gen_arg(rng, fname, aname, atype):
    a = (aname or '').lower()
    if atype == 'text':
        if a in ('session_id', 'conversation_id'):
            return gen_text(rng, SESSIONS, 256)
        if a == 'role':
            if rng.random() < 0.85:
                return V(q(rng.choice(TURN_ROLES)))
            return V(q(rng.choice(BAD_TURN_ROLES))) if rng.random() < 0.7 else gen_text(rng, [], hostile=1.0)
        if a == 'namespace':
            return gen_text(rng, NAMESPACES, 63)
        if a in ('key', 'instance'):
            return gen_text(rng, KEYS if a == 'key' else INSTANCES, 1024)
        if a == 'tag':
            return gen_text(rng, TAGS, 256)
        if a == 'message_id':
            return gen_text(rng, MESSAGES, 256)
        if a == 'name':
            return gen_text(rng, MAP_NAMES, 63)
        if a == 'query':
            if fname == 'fetch':
                return gen_query(rng, FETCH_QUERIES, RANDOM_QUERY_STATES)
            if fname == 'define_map':
                v = gen_query(rng, [(m[0], m[1], m[4]) for m in MAP_QUERIES], RANDOM_QUERY_STATES | {BAD_VALUE})
                return v
            return gen_text(rng, ['SELECT 1'], hostile=0.8)
        if a == 'kind':
            if rng.random() < 0.9:
                k = rng.choice(KINDS)
                return V(q(k), note=k)
            v = gen_text(rng, [], hostile=1.0)
            return V(v.expr, v.bad, note=None if v.expr == 'NULL' else 'other')
        if a in ('content', 'body', 'reply', 'error'):
            if rng.random() < 0.02:
                # around agentcache.max_turn_bytes (1MB)
                return V(boundary_text(rng, 1048576))
            return gen_text(rng, TEXTS, None, hostile=0.3)
        if a == 'encoding':
            return gen_text(rng, ['o200k_base', 'cl100k_base', 'O200K_BASE', 'gpt2'])
        return gen_text(rng, TEXTS + SESSIONS)
    if atype == 'interval':
        return gen_interval(rng)
    if atype == 'integer':
        return gen_int(rng, 32)
    if atype == 'bigint':
        return gen_int(rng, 64)
    if atype == 'smallint':
        return V(rng.choice(('0', '-1', '1', '32767', '-32768', 'NULL')))
    if atype in ('jsonb', 'json'):
        return gen_json(rng, null_ok=True)
    if atype == 'text[]':
        return gen_tags(rng)
    if atype == 'regrole':
        if rng.random() < 0.08:
            return V('NULL')
        lit = rng.choice(ROLE_TARGETS)
        return V(lit, ROLE_CAST_ERRORS.get(lit, ()))
    if atype == 'boolean':
        return V(rng.choice(('true', 'false', 'NULL')))
    if atype in ('timestamp with time zone', 'timestamptz'):
        return V(rng.choice(("now()", "'infinity'", "'-infinity'", "'2000-01-01'", 'NULL')))
    if atype in ('double precision', 'real', 'numeric'):
        return V(rng.choice(('0', '-1', '1e308', "'NaN'", "'Infinity'", 'NULL')))
    # an argument type this fuzzer does not know: NULL, or the type's default input
    return V('NULL')


def selftest_allowed(kind):
    """_boundary_selftest(kind): an internal probe of the C++/PostgreSQL error boundary
    (src/pg/selftest.cpp); 'cxx' and 'cxx_lwlock' raise XX000 on purpose."""
    return {'ok': set(), 'lwlock': set(), 'sql': {BAD_VALUE}, 'pg': {'22012'}, 'bad_alloc': {MAP_MEMORY},
            'cxx': {'XX000'}, 'cxx_lwlock': {'XX000'}, None: {NULL_ARG}}.get(kind, {BAD_VALUE})


# ----------------------------------------------------------------------------
# the fuzzer

class Failure(Exception):
    pass


class Watchdog(threading.Thread):
    """Cancels a statement that outlives its statement_timeout by `grace` seconds
    (the server should have cancelled it) and aborts the run if even that fails."""

    def __init__(self, grace=5.0, hard=20.0):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.cur = None
        self.fired = False
        self.grace, self.hard = grace, hard
        self.on_abort = None

    def arm(self, conn, seconds):
        with self.lock:
            self.cur = [conn, time.monotonic() + seconds + self.grace, False]
            self.fired = False

    def disarm(self):
        with self.lock:
            self.cur = None

    def run(self):
        while True:
            time.sleep(0.2)
            with self.lock:
                cur = self.cur
                if cur is None:
                    continue
                now = time.monotonic()
                if not cur[2] and now > cur[1]:
                    cur[2] = True
                    self.fired = True
                    try:
                        cur[0].cancel()
                    except Exception:
                        pass
                elif cur[2] and now > cur[1] + self.hard:
                    if self.on_abort:
                        self.on_abort()
                    os._exit(3)


class Fuzzer:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.counts = {}          # (label, state) -> n
        self.calls = 0
        self.failures = 0
        self.covered = set()
        self.conns = {}
        self.pids = {}
        self.base_timeout = args.statement_timeout
        self.wd = Watchdog()
        self.wd.on_abort = self._hard_abort
        self.current = None       # (case, stmt) for reports
        # map bookkeeping: name -> ('clean', template index) | 'unknown' | 'absent'
        self.maps = {}
        self.triggers = {}        # table -> sorted trigger function names attached
        self.warnings = 0
        self.check_seconds = 0.0
        self.check_time = {}
        self.checked = {'rounds': 0, 'sessions': 0, 'maps': 0, 'map keys': 0, 'entries': 0, 'dedup rows': 0}

    # ------------------------------------------------------------ connections
    def connect(self, user=None):
        kw = {'autocommit': True}
        if user:
            kw['user'] = user
        c = psycopg.connect(self.args.dsn, **kw)
        c.add_notice_handler(self._notice)
        c.execute("SET standard_conforming_strings = on")
        c.execute("SET client_min_messages = warning")
        c.execute(f"SET statement_timeout = {self.base_timeout}")
        return c

    def _notice(self, diag):
        if diag.severity_nonlocalized == 'WARNING':
            self.warnings += 1

    def setup(self, prepare=True):
        own = self.connect()
        self.conns['owner'] = own
        if not prepare:
            return self.discover(own)
        r = own.execute("SELECT rolsuper, current_user FROM pg_roles WHERE rolname = current_user").fetchone()
        if not r[0]:
            raise SystemExit('fuzz: the connecting role must be a superuser (the extension owner)')
        self.owner_name = r[1]
        if own.execute("SELECT count(*) FROM pg_extension WHERE extname = 'agentcache'").fetchone()[0] != 1:
            raise SystemExit('fuzz: CREATE EXTENSION agentcache first')
        for role, login in (('fuzz_app', True), ('fuzz_nobody', True), ('fuzz_extra', False)):
            own.execute(f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
                        f"CREATE ROLE {role} {'LOGIN' if login else 'NOLOGIN'}; END IF; END$$")
        own.execute("DROP SCHEMA IF EXISTS fz_check CASCADE")
        own.execute("DROP TABLE IF EXISTS public.fz_t1, public.fz_t2, public.fz_src, public.fz_secret, "
                    "public.fz_app_t, public.fz_ddl CASCADE")
        own.execute("SELECT agentcache.grant_app('fuzz_app')")
        own.execute("GRANT USAGE ON SCHEMA agentcache TO fuzz_nobody")
        own.execute("GRANT CREATE ON SCHEMA public TO fuzz_app")
        for t in ('fz_t1', 'fz_t2'):
            own.execute(f"CREATE TABLE public.{t} (id int PRIMARY KEY, tenant text, name text, data jsonb, n bigint)")
            own.execute(f"INSERT INTO public.{t} SELECT i, 'tenant-' || (i % 3), 'name ' || i, "
                        f"jsonb_build_object('i', i), i FROM generate_series(1, 10) i")
            own.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.{t} TO fuzz_app")
        own.execute("CREATE TABLE public.fz_src (key text PRIMARY KEY, val jsonb)")
        own.execute("INSERT INTO public.fz_src SELECT 'k' || i, jsonb_build_object('v', i) FROM generate_series(1, 9) i")
        own.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.fz_src TO fuzz_app")
        own.execute("CREATE TABLE public.fz_secret (id int, s text)")
        own.execute("INSERT INTO public.fz_secret VALUES (1, 'secret')")
        own.execute("CREATE SCHEMA fz_check")
        own.execute("""
CREATE FUNCTION fz_check.expected_context(sid text, n int, c int) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(obj ORDER BY seq), '[]')
  FROM (SELECT seq, obj, sum(len) OVER (ORDER BY seq DESC) AS run
        FROM (SELECT seq, char_length(content) AS len,
                     jsonb_build_object('seq', seq, 'role', role, 'content', content, 'at', to_jsonb(created_at))
                     || CASE WHEN meta IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('meta', meta) END AS obj
              FROM agentcache.turns WHERE session_id = sid ORDER BY seq DESC LIMIT n) t) u
  WHERE c IS NULL OR run <= c
$$""")
        own.execute("""
CREATE FUNCTION fz_check.expected_turns(sid text, n int) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_array(seq, role, content, meta, created_at) ORDER BY seq), '[]')
  FROM (SELECT * FROM agentcache.turns WHERE session_id = sid ORDER BY seq DESC LIMIT n) t
$$""")
        own.execute("""
CREATE FUNCTION fz_check.actual_turns(sid text, n int) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_array(g.seq, g.role, g.content, g.meta, g.created_at)), '[]')
  FROM agentcache.get_turns(sid, n) g
$$""")
        self.conns['app'] = self.connect('fuzz_app')
        self.conns['nobody'] = self.connect('fuzz_nobody')
        self.conns['app'].execute(f"CREATE TABLE public.{TABLE_APP} (id int PRIMARY KEY, tenant text, name text, "
                                  f"data jsonb, n bigint)")
        self.discover(own)
        self.pgdata = own.execute("SHOW data_directory").fetchone()[0]
        self.wd.start()
        self.baseline()

    def discover(self, own):        # the functions, in a fixed order
        rows = own.execute("""
SELECT p.proname, coalesce(p.proargnames, '{}'), array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t),
       p.pronargdefaults, p.proretset, p.prorettype = 'trigger'::regtype, p.oid::regprocedure::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'agentcache' AND p.prokind = 'f'
ORDER BY p.proname, p.oid::regprocedure::text""").fetchall()
        self.funcs = [Func(r[0], list(r[1])[:len(r[2])], list(r[2]), r[3], r[4], r[5], r[6]) for r in rows]
        self.callable = [f for f in self.funcs if not f.trigger]
        self.trigger_funcs = [f for f in self.funcs if f.trigger]
        self.gucs = [tuple(r) for r in own.execute(
            "SELECT name, vartype, coalesce(unit, '') FROM pg_settings WHERE name LIKE 'agentcache.%' "
            "AND context = 'user' ORDER BY name").fetchall()]

    def postmaster_identity(self):
        own = self.conns['owner']
        r = own.execute("SELECT pg_postmaster_start_time()::text, "
                        "(SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer')").fetchone()
        pm_pid = None
        try:
            with open(os.path.join(self.pgdata, 'postmaster.pid')) as f:
                pm_pid = f.readline().strip()
        except OSError:
            pass
        return (r[0], r[1], pm_pid)

    def worker_pid(self):
        r = self.conns['owner'].execute("SELECT agentcache.health()->'worker'->>'pid'").fetchone()
        return r[0]

    def baseline(self):
        for role, c in self.conns.items():
            self.pids[role] = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.identity = self.postmaster_identity()
        self.worker = self.worker_pid()

    def check_alive(self, where):
        try:
            for role, c in self.conns.items():
                pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
                if pid != self.pids[role]:
                    raise Failure(f"backend of role {role} changed pid {self.pids[role]} -> {pid} ({where})")
            ident = self.postmaster_identity()
        except psycopg.Error as e:
            raise Failure(f"server unreachable ({where}): {e!r} -- crashed?")
        if ident != self.identity:
            raise Failure(f"postmaster restarted ({where}): {self.identity} -> {ident}")
        w = self.worker_pid()
        if w != self.worker and w is not None:
            if self.worker is not None:
                raise Failure(f"the agentcache worker was restarted ({where}): pid {self.worker} -> {w} "
                              "(it died: see the server log)")
            self.worker = w

    def _hard_abort(self):
        case, stmt = self.current or (None, None)
        print(f"\nFAILURE: statement still running {self.wd.grace + self.wd.hard:.0f} s after its "
              f"statement_timeout and a cancel request: the backend hangs uninterruptibly", flush=True)
        if case is not None:
            self.print_case(case, stmt)
        print(f"fuzz: seed={self.seed} cases=? calls={self.calls} functions={len(self.covered)} failures=1",
              flush=True)

    # ------------------------------------------------------------ generation
    def gen_case(self, idx):
        rng = random.Random(f"agentcache-fuzz:{self.seed}:{idx}")
        role = rng.choices(('owner', 'app', 'nobody'), weights=(35, 50, 15))[0]
        r = rng.random()
        if r < 0.35:
            mode, nact = 'auto', 1
        elif r < 0.65:
            mode, nact = 'auto', rng.randint(2, 14)
        elif r < 0.83:
            mode, nact = 'txn', rng.randint(1, 10)
        elif r < 0.90:
            mode, nact = 'ro', rng.randint(1, 8)
        elif r < 0.95:
            mode, nact = rng.choice(('rr', 'ser')), rng.randint(1, 8)
        else:
            mode, nact = 'txn', rng.randint(1, 3)
        end = 'commit'
        if mode != 'auto':
            e = rng.random()
            if r >= 0.95:
                end = rng.choice(('prepare_commit', 'prepare_rollback'))
            elif e < 0.3:
                end = 'rollback'
        savepoints = mode != 'auto' and rng.random() < 0.5
        stmts = []
        for _ in range(nact):
            stmts.extend(self.gen_action(rng, role, mode))
        return Case(idx, role, mode, savepoints, end, stmts)

    def gen_action(self, rng, role, mode):
        a = rng.choices(('call', 'flow', 'trigger_ddl', 'trigger_dml', 'direct_dml', 'source_dml', 'guc',
                         'maintenance'),
                        weights=(62, 15, 4, 8, 4, 3, 3, 1))[0]
        if a == 'call':
            return [self.gen_call(rng, role=role)]
        if a == 'flow':
            return self.gen_flow(rng)
        if a == 'trigger_ddl':
            return [self.gen_trigger_ddl(rng, role)]
        if a == 'trigger_dml':
            return [self.gen_trigger_dml(rng, role)]
        if a == 'direct_dml':
            return self.gen_direct_dml(rng, role, mode)
        if a == 'source_dml':
            return [self.gen_source_dml(rng)]
        if a == 'guc':
            return [self.gen_guc(rng, mode)]
        return [self.gen_maintenance(rng, mode)]

    def call_sql(self, f, vals, rng, named=None):
        """SELECT agentcache.f(...) with the values cast to the argument types."""
        if named is None:
            named = bool(f.argnames) and all(f.argnames) and rng.random() < 0.25
        parts = []
        if named:
            first_default = len(f.argtypes) - f.ndefaults
            for i, v in enumerate(vals):
                if i >= first_default and v.note == 'omit':
                    continue
                parts.append(f"{f.argnames[i]} => ({v.expr})::{f.argtypes[i]}")
        else:
            for i, v in enumerate(vals):
                if v.note == 'omit':
                    break
                parts.append(f"({v.expr})::{f.argtypes[i]}")
        call = f'agentcache."{f.name}"({", ".join(parts)})'
        if f.retset:
            return f"SELECT * FROM {call}"
        if rng.random() < 0.04:
            return f"SELECT {call} FROM generate_series(1, 3)"
        return f"SELECT {call}"

    def gen_call(self, rng, f=None, fixed=None, role=None):
        if f is None:
            weights = [FUNC_WEIGHT_TRIGGER if g.trigger else
                       FUNC_WEIGHTS.get(g.name, 1.0) * (0.3 if g.name in ADMIN and role != 'owner' else 1.0)
                       for g in self.funcs]
            f = rng.choices(self.funcs, weights=weights)[0]
        if f.trigger:
            return Stmt(f'SELECT agentcache."{f.name}"()', f.name, DIRECT_TRIGGER_CALL, is_call=True)
        vals = []
        for i, t in enumerate(f.argtypes):
            if fixed and i in fixed:
                vals.append(fixed[i])
            else:
                vals.append(gen_arg(rng, f.name, f.argnames[i] if i < len(f.argnames) else '', t))
        # leave out some defaulted trailing arguments
        if f.ndefaults and rng.random() < 0.3 and not fixed:
            k = rng.randint(1, f.ndefaults)
            for i in range(len(vals) - k, len(vals)):
                vals[i] = V('NULL', note='omit')
        allow = set(COMMON) | PER_FUNCTION.get(f.name, set())
        timeout = None
        touches = ()
        track = None
        post = None
        for i, v in enumerate(vals):
            allow |= v.bad
        # per-function notes
        if f.name == 'fetch' and len(vals) > 2 and isinstance(vals[2].note, tuple):
            own_states, touches, timeout, _ = vals[2].note
            allow |= own_states
        if f.name == 'define_map' and len(vals) > 1 and isinstance(vals[1].note, tuple):
            own_states, _, timeout, ti = vals[1].note
            allow |= own_states | {NOT_SUPPORTED}
            track = ('define', vals[0].expr, ti)
        if f.name == 'refresh_map':
            allow |= MAP_QUERY_STATES
            track = ('refresh', vals[0].expr)
        if f.name == 'drop_map':
            track = ('drop', vals[0].expr)
        if f.name == '_reset_memory':
            track = ('reset',)
        if f.name == '_boundary_selftest':
            kind = vals[0].note if vals[0].expr != 'NULL' else None
            allow = {NO_PRIV} | selftest_allowed(kind) | vals[0].bad
            if kind == 'cxx_lwlock':
                post = ('lwlock_free',)
        if f.name == 'put' and len(vals) >= 4 and vals[3].note in LONG_INTERVALS and not any(v.bad for v in vals):
            post = ('put_get', vals[0].expr, vals[1].expr, vals[2].expr)
        if rng.random() < 0.02 and not any(g.name == f.name and len(g.argtypes) == len(f.argtypes) + 1
                                           for g in self.funcs):
            # one argument too many: no such function
            full = [V(v.expr if v.note != 'omit' else 'NULL') for v in vals]
            sql = self.call_sql(f, full, rng, named=False)
            sql = sql.replace(f'agentcache."{f.name}"(', f'agentcache."{f.name}"(NULL::text, ', 1) if vals else \
                sql.replace(f'agentcache."{f.name}"()', f'agentcache."{f.name}"(1)', 1)
            return Stmt(sql, f.name, {'42883'}.union(*(v.bad for v in vals)), is_call=True)
        return Stmt(self.call_sql(f, vals, rng), f.name, allow, timeout=timeout, touches=touches, track=track,
                    post=post, is_call=True)

    def func(self, name):
        for f in self.callable:
            if f.name == name:
                return f
        return None

    def gen_flow(self, rng):
        """A short meaningful sequence on plausible values."""
        k = rng.randrange(5)
        out = []
        if k == 0 and self.func('dedup_begin'):
            m = V(q(rng.choice(MESSAGES[:8])))
            out.append(self.gen_call(rng, self.func('dedup_begin'), {0: m}))
            nxt = rng.choice(('dedup_complete', 'dedup_fail', 'dedup_state', 'dedup_begin'))
            if self.func(nxt):
                out.append(self.gen_call(rng, self.func(nxt), {0: m}))
        elif k == 1 and self.func('inbound') and self.func('outbound'):
            m = V(q(rng.choice(MESSAGES[:8])))
            s = V(q(rng.choice(SESSIONS[:5])))
            inst = V(q(rng.choice(INSTANCES)))
            out.append(self.gen_call(rng, self.func('inbound'), {0: inst, 1: m, 2: s, 3: V(q(rng.choice(TEXTS)))}))
            out.append(self.gen_call(rng, self.func('outbound'), {0: m, 1: s, 2: V(q(rng.choice(TEXTS)))}))
        elif k == 2 and self.func('put') and self.func('get'):
            ns = V(q(rng.choice(NAMESPACES[:4])))
            key = V(q(rng.choice(KEYS[:6])))
            tags = V(rng.choice(TAG_ARRAYS[:5]))
            lit = rng.choice(INTERVALS)
            out.append(self.gen_call(rng, self.func('put'), {0: ns, 1: key, 2: V(rng.choice(JSON_VALUES[:14])),
                                                             3: V(lit, note=lit), 4: tags}))
            out.append(self.gen_call(rng, self.func('get'), {0: ns, 1: key}))
            if self.func('invalidate_tag') and rng.random() < 0.5:
                out.append(self.gen_call(rng, self.func('invalidate_tag'), {0: V(q(rng.choice(TAGS[:7])))}))
                out.append(self.gen_call(rng, self.func('get'), {0: ns, 1: key}))
        elif k == 3 and self.func('add_turn') and self.func('get_context'):
            s = V(q(rng.choice(SESSIONS)))
            out.append(self.gen_call(rng, self.func('add_turn'), {0: s, 1: V(q(rng.choice(TURN_ROLES)))}))
            out.append(self.gen_call(rng, self.func('get_context'), {0: s}))
        elif k == 4 and self.func('define_map') and self.func('lookup'):
            name = V(q(rng.choice(MAP_NAMES[:4])))
            ti = rng.randrange(11)
            t = MAP_QUERIES[ti]
            out.append(self.gen_call(rng, self.func('define_map'), {0: name, 1: V(q(t[0]), note=(set(t[1]), (), t[4], ti)),
                                                                    2: V("'1 hour'")}))
            for _ in range(rng.randint(1, 3)):
                out.append(self.gen_call(rng, self.func('lookup'), {0: name, 1: gen_text(rng, KEYS + INSTANCES)}))
        if not out:
            out.append(self.gen_call(rng))
        return out

    def gen_trigger_ddl(self, rng, role):
        table = TABLE_APP if role == 'app' and rng.random() < 0.7 else rng.choice(TABLES_OWNER)
        tname = f"fz_trg_{rng.randrange(4)}"
        if rng.random() < 0.2:
            return Stmt(f"DROP TRIGGER IF EXISTS {tname} ON public.{table}", '<trigger ddl>', {NO_PRIV})
        f = rng.choice(self.trigger_funcs) if self.trigger_funcs else None
        if f is None:
            return Stmt("SELECT 1", '<trigger ddl>')
        timing = rng.choices(('AFTER', 'BEFORE'), weights=(85, 15))[0]
        level = rng.choices(('ROW', 'STATEMENT'), weights=(75, 25))[0]
        events = rng.choice(('INSERT OR UPDATE OR DELETE', 'INSERT', 'UPDATE', 'DELETE', 'UPDATE OF tenant',
                             'TRUNCATE', 'INSERT OR UPDATE OR DELETE OR TRUNCATE'))
        if 'TRUNCATE' in events and rng.random() < 0.8:
            level = 'STATEMENT'
        nargs = rng.choices((0, 1, 2, 3, 50), weights=(10, 40, 25, 15, 5))[0]
        args = []
        for _ in range(nargs):
            if f.name == 'refresh_trigger':
                pool = MAP_NAMES + INJECTION[:5] + ['']
            else:
                pool = TRIGGER_TEMPLATES + INJECTION + UNICODE[:8]
            args.append(q(rng.choice(pool)))
        when = " WHEN (NEW.id > 0)" if level == 'ROW' and timing == 'AFTER' and events == 'INSERT' and \
            rng.random() < 0.2 else ''
        sql = (f"CREATE OR REPLACE TRIGGER {tname} {timing} {events} ON public.{table} FOR EACH {level}{when} "
               f"EXECUTE FUNCTION agentcache.\"{f.name}\"({', '.join(args)})")
        # TRUNCATE ... FOR EACH ROW, a column list with TRUNCATE: PostgreSQL's own 0A000/42601
        return Stmt(sql, '<trigger ddl>', {NO_PRIV, NOT_SUPPORTED, '42601', '42P17', '0A000'})

    def row_values(self, rng, id_):
        tenant = rng.choice(("'tenant-1'", "'tenant-2'", 'NULL', q(rng.choice(INJECTION)), q(rng.choice(UNICODE)),
                             "repeat('t', 10000)", "''"))
        name = rng.choice(("'n'", 'NULL', q(rng.choice(INJECTION)), "repeat('\U0001f600', 300)"))
        data = rng.choice(("'{}'", 'NULL', "'{\"a\": [1, 2]}'", "jsonb_build_object('t', repeat('x', 5000))"))
        n = rng.choice(('0', '-1', '9223372036854775807', 'NULL'))
        return f"({id_}, {tenant}, {name}, {data}, {n})"

    def gen_trigger_dml(self, rng, role):
        if role == 'app' and rng.random() < 0.5:
            table = TABLE_APP
        else:
            table = rng.choice(TABLES_OWNER)
        k = rng.random()
        if k < 0.35:
            rows = ', '.join(self.row_values(rng, rng.randint(1, 20)) for _ in range(1)) if rng.random() < 0.8 else \
                ', '.join(self.row_values(rng, i) for i in rng.sample(range(21, 40), 3))
            sql = (f"INSERT INTO public.{table} VALUES {rows} ON CONFLICT (id) DO UPDATE SET tenant = EXCLUDED.tenant, "
                   f"name = EXCLUDED.name, data = EXCLUDED.data, n = EXCLUDED.n")
        elif k < 0.45:
            a = rng.randint(1, 30)
            sql = (f"INSERT INTO public.{table} SELECT g, 'tenant-' || (g % 3), 'g', NULL, g "
                   f"FROM generate_series({a}, {a + rng.randint(0, 20)}) g ON CONFLICT DO NOTHING")
        elif k < 0.7:
            sql = rng.choice((f"UPDATE public.{table} SET name = {q(rng.choice(TEXTS))}, n = coalesce(n, 0) % 1000 + 1 WHERE id = "
                              f"{rng.randint(1, 20)}",
                              f"UPDATE public.{table} SET tenant = NULL WHERE id % 2 = 0",
                              f"UPDATE public.{table} SET tenant = 'tenant-' || (id % 3)",
                              f"UPDATE public.{table} SET id = id + 1000 WHERE id = {rng.randint(1, 20)}"))
        elif k < 0.92:
            sql = rng.choice((f"DELETE FROM public.{table} WHERE id = {rng.randint(1, 20)}",
                              f"DELETE FROM public.{table} WHERE id > 1000",
                              f"DELETE FROM public.{table} WHERE tenant IS NULL"))
        else:
            sql = f"TRUNCATE public.{table}"
        allow = TRIGGER_FIRE | {DUPLICATE}
        touches = (table,) if table in ('fz_t1',) else ()
        return Stmt(sql, '<dml>', allow, touches=touches, dml_table=table)

    def gen_direct_dml(self, rng, role, mode):
        """DML on agentcache's own tables; the caches must follow (API.md §1, TTL store)."""
        s = q(rng.choice(SESSIONS[:6]))
        k = rng.random()
        stmts = []
        if k < 0.6:
            sql = rng.choice((
                f"UPDATE agentcache.turns SET content = content || '+' WHERE session_id = {s} AND seq = "
                f"(SELECT max(seq) FROM agentcache.turns WHERE session_id = {s})",
                f"UPDATE agentcache.turns SET meta = '{{\"edited\": true}}' WHERE session_id = {s}",
                f"UPDATE agentcache.turns SET role = 'robot' WHERE session_id = {s}",
                f"DELETE FROM agentcache.turns WHERE session_id = {s} AND seq = "
                f"(SELECT min(seq) FROM agentcache.turns WHERE session_id = {s})",
                f"DELETE FROM agentcache.turns WHERE session_id = {s}",
                f"INSERT INTO agentcache.turns (session_id, seq, role, content) SELECT {s}, "
                f"coalesce(max(seq), 0) + 1000, 'system', 'direct' FROM agentcache.turns WHERE session_id = {s}",
                f"INSERT INTO agentcache.turns (session_id, seq, role, content, created_at) VALUES ({s}, "
                f"{rng.randint(1, 5)}, 'user', 'old', '2000-01-01')",
                f"UPDATE agentcache.turns SET session_id = {q(rng.choice(SESSIONS[:6]))} WHERE session_id = {s} "
                f"AND seq > 1000",
                f"UPDATE agentcache.turns SET seq = -seq WHERE session_id = {s} AND seq > 1000",
                "TRUNCATE agentcache.turns" if rng.random() < 0.1 else
                f"DELETE FROM agentcache.turns WHERE session_id = {s} AND role = 'tool'"))
            if role == 'owner' and mode != 'auto' and rng.random() < 0.3:
                stmts.append(Stmt("SET LOCAL session_replication_role = replica", '<guc>', {NO_PRIV}))
        elif k < 0.85:
            ns = q(rng.choice(NAMESPACES[:4]))
            key = q(rng.choice(KEYS[:6]))
            sql = rng.choice((
                f"UPDATE agentcache.entries SET value = '\"direct\"' WHERE namespace = {ns} AND key = {key}",
                f"UPDATE agentcache.entries SET expires_at = now() - interval '1 second' WHERE namespace = {ns} "
                f"AND key = {key}",
                f"DELETE FROM agentcache.entries WHERE namespace = {ns} AND key = {key}",
                f"UPDATE agentcache.entries SET tags = ARRAY['t1'] WHERE namespace = {ns}"))
        else:
            ns = q(rng.choice(NAMESPACES[:4]))
            sql = rng.choice((
                f"UPDATE agentcache.namespaces SET default_ttl = interval '1 hour' WHERE namespace = {ns}",
                f"UPDATE agentcache.namespaces SET default_ttl = NULL WHERE namespace = {ns}",
                f"DELETE FROM agentcache.namespaces WHERE namespace = {ns}"))
        stmts.append(Stmt(sql, '<direct dml>', {NO_PRIV, DUPLICATE, '23514', '23502', UNDEF_COLUMN}))
        return stmts

    def gen_source_dml(self, rng):
        k = rng.randrange(5)
        key = q(rng.choice(['k1', 'k2', 'k9', 'x', 'inst-1', '\U0001f600', '', "k'"]))
        sql = [f"INSERT INTO public.fz_src VALUES ({key}, {rng.choice(JSON_VALUES[:14])}) "
               f"ON CONFLICT (key) DO UPDATE SET val = EXCLUDED.val",
               f"DELETE FROM public.fz_src WHERE key = {key}",
               f"UPDATE public.fz_src SET val = jsonb_build_object('u', {rng.randint(0, 9)}) WHERE key = {key}",
               "INSERT INTO public.fz_src SELECT 'b' || g, to_jsonb(g) FROM generate_series(1, 50) g "
               "ON CONFLICT DO NOTHING",
               "DELETE FROM public.fz_src WHERE key LIKE 'b%'"][k]
        return Stmt(sql, '<source dml>', {NO_PRIV}, touches=('fz_src',), dml_table='fz_src')

    def gen_guc(self, rng, mode):
        if not self.gucs:
            return Stmt("SELECT 1", '<guc>')
        name, vartype, unit = rng.choice(self.gucs)
        if unit in ('kB', 'B', '8kB', 'MB'):
            vals = ["'1kB'", "'1023'", "'1MB'", "'64kB'", "'1GB'", "'2GB'", "'0'", "'-1'", "'abc'", "'1TB'"]
        elif unit in ('ms', 's', 'min'):
            vals = ["'0'", "'1s'", "'1ms'", "'1min'", "'-1'", "'100000000000s'", "'1 year'", "'10min'", "'x'"]
        elif vartype == 'integer':
            vals = ["'1'", "'0'", "'-1'", "'3'", "'1000'", "'2147483647'", "'2147483648'", "'x'"]
        else:
            vals = ["'o200k_base'", "'cl100k_base'", "''", "'x'", q(rng.choice(INJECTION))]
        v = rng.choice(vals)
        if rng.random() < 0.15:
            return Stmt(f"RESET {name}", '<guc>', set())
        local = 'LOCAL ' if mode != 'auto' and rng.random() < 0.6 else ''
        return Stmt(f"SET {local}{name} = {v}", '<guc>', {BAD_VALUE, '22003', '22P02'})

    def gen_maintenance(self, rng, mode):
        """Routine background activity (API.md: no call fails because of it)."""
        t = rng.choice(('agentcache.turns', 'agentcache.entries', 'agentcache.dedup', 'agentcache.namespaces',
                        'agentcache.maps'))
        sql = rng.choice((f"VACUUM {t}", f"VACUUM (FULL) {t}", f"ANALYZE {t}", f"REINDEX TABLE {t}",
                          "CREATE INDEX IF NOT EXISTS fz_idx ON agentcache.entries (stored_at)",
                          "DROP INDEX IF EXISTS agentcache.fz_idx",
                          "CREATE INDEX CONCURRENTLY IF NOT EXISTS fz_cic ON agentcache.turns (created_at)",
                          "DROP INDEX CONCURRENTLY IF EXISTS agentcache.fz_cic",
                          "SELECT pg_reload_conf()", f"GRANT SELECT ON {t} TO fuzz_extra",
                          f"REVOKE SELECT ON {t} FROM fuzz_extra", "CHECKPOINT", "SELECT pg_stat_reset()",
                          "DISCARD PLANS", "SELECT pg_sleep(0.05)"))
        # VACUUM/CIC in a transaction block: 25001; everything but the owner: 42501
        return Stmt(sql, '<maintenance>', {'25001', NO_PRIV, '55006', '42P07'})

    # ------------------------------------------------------------ execution
    def count(self, label, state):
        self.counts[(label, state)] = self.counts.get((label, state), 0) + 1

    def execute(self, conn, sql, timeout_ms):
        """Runs sql; returns (sqlstate or None, message)."""
        limit = (timeout_ms or self.base_timeout) / 1000.0
        self.wd.arm(conn, limit)
        try:
            conn.execute(sql)
            return None, None
        except psycopg.Error as e:
            st = getattr(e, 'sqlstate', None)
            if st is None or conn.closed or conn.broken:
                raise Failure(f"connection lost: {e!r} (backend crash?)")
            return st, str(e).strip()
        finally:
            self.wd.disarm()
            if self.wd.fired:
                self.wd.fired = False
                raise Failure(f"client timeout: the statement ran {limit + self.wd.grace:.1f} s, past its "
                              f"statement_timeout of {limit:.1f} s (hang)")

    def print_case(self, case, stmt, err=None):
        print(f"  seed={self.seed} case={case.idx} role={case.role} mode={case.mode} end={case.end} "
              f"savepoints={case.savepoints}")
        if stmt is not None:
            print("  statement:")
            print('    ' + stmt.sql.replace('\n', '\n    '))
        if err:
            print(f"  error: {err}")
        print("  whole case:")
        print('    ' + case.script().replace('\n', '\n    '))
        print(f"  replay: python3 test/fuzz/fuzz.py --seed {self.seed} --case-from {case.idx} "
              f"--cases {case.idx + 1}   (state-dependent failures: --cases {case.idx + 1} replays the whole run)")
        sys.stdout.flush()

    def fail(self, case, stmt, msg, err=None):
        self.failures += 1
        print(f"\nFAILURE: {msg}")
        if case is not None:
            self.print_case(case, stmt, err)
        else:
            print(f"  seed={self.seed}")
        sys.stdout.flush()
        if not self.args.keep_going:
            raise SystemExit(self.finish(1))

    def run_case(self, case):
        conn = self.conns[case.role]
        # every case starts from the default settings (a case's SET agentcache.* ends with it)
        conn.execute(f"RESET ALL; SET statement_timeout = {self.base_timeout}; SET client_min_messages = warning; "
                     "SET standard_conforming_strings = on")
        in_txn = case.mode != 'auto'
        txn_events = []           # map bookkeeping applied at commit
        dirtied = set()
        aborted = False
        if in_txn:
            st, msg = self.execute(conn, case.begin_sql(), None)
            if st:
                return self.fail(case, None, f"{case.begin_sql()} failed", f"{st}: {msg}")
        for stmt in case.stmts:
            if aborted:
                break
            self.current = (case, stmt)
            allow = set(stmt.allow)
            if case.mode == 'ro':
                allow.add(READ_ONLY)
            if case.mode in ('rr', 'ser'):
                allow.add(SERIALIZATION)
            if in_txn and stmt.label == '<maintenance>':
                allow.add('25001')
            if in_txn and case.savepoints:
                self.execute(conn, "SAVEPOINT fz_sp", None)
            if stmt.timeout:
                conn.execute(f"SET statement_timeout = {stmt.timeout}")
            for t in stmt.touches:
                dirtied.add(t)
                self.dirty_source(t)
            st, msg = self.execute(conn, stmt.sql, stmt.timeout)
            self.account(stmt, st, case)
            if st is None:
                if stmt.track:
                    if in_txn:
                        txn_events.append(stmt.track)
                    else:
                        self.apply_track(stmt.track, set())
                if stmt.post and not in_txn:
                    self.run_post(case, stmt, conn)
            else:
                # NEVER states are only in `allow` for the boundary self-test's deliberate probes
                if st not in allow:
                    why = 'never allowed' if st in NEVER else 'not documented for this call'
                    if st == CANCELED:
                        why = 'statement_timeout on a statement that is not a deliberate pg_sleep (hang?)'
                    self.fail(case, stmt, f"SQLSTATE {st} ({why})", f"{st}: {msg}")
                if in_txn:
                    if case.savepoints:
                        self.execute(conn, "ROLLBACK TO SAVEPOINT fz_sp", None)
                    else:
                        aborted = True
            if in_txn and case.savepoints and st is None:
                self.execute(conn, "RELEASE SAVEPOINT fz_sp", None)
            if stmt.timeout and not aborted:
                self.execute(conn, f"SET statement_timeout = {self.base_timeout}", None)
        self.current = (case, None)
        if in_txn:
            end = case.end_sql() if not aborted else ('ROLLBACK' if not case.end.startswith('prepare')
                                                      else case.end_sql())
            st, msg = self.execute(conn, end, None)
            committed = False
            if case.end.startswith('prepare'):
                if st is None:
                    self.count('<prepare>', 'ok')
                    fin = f"{'COMMIT' if case.end == 'prepare_commit' else 'ROLLBACK'} PREPARED 'fz_{case.idx}'"
                    # a prepared transaction that did nothing (aborted) is not there
                    exists = self.conns['owner'].execute(
                        f"SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'fz_{case.idx}'").fetchone()[0]
                    if exists:
                        st2, msg2 = self.execute(conn, fin, None)
                        if st2:
                            self.fail(case, None, f"{fin} failed", f"{st2}: {msg2}")
                        committed = case.end == 'prepare_commit'
                    # a prepared transaction's map changes: not tracked exactly
                    for ev in txn_events:
                        self.apply_track(ev, set(), unknown=True)
                    txn_events = []
                else:
                    self.count('<prepare>', st)
                    if st != NOT_SUPPORTED:
                        self.fail(case, None, f"PREPARE TRANSACTION: SQLSTATE {st} (only 0A000 is documented)",
                                  f"{st}: {msg}")
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
            elif st:
                allow = {READ_ONLY} if case.mode == 'ro' else set()
                if case.mode in ('rr', 'ser'):
                    allow.add(SERIALIZATION)
                self.count('<commit>', st)
                if st not in allow:
                    self.fail(case, None, f"{end}: SQLSTATE {st}", f"{st}: {msg}")
            else:
                committed = end == 'COMMIT'
            if committed:
                for ev in txn_events:
                    self.apply_track(ev, dirtied)
            else:
                for ev in txn_events:
                    self.apply_track(ev, set(), unknown=True)
        if any(s.label == '<trigger ddl>' for s in case.stmts):
            self.reload_triggers()
        # nothing may be left prepared (it would hold locks)
        left = self.conns['owner'].execute("SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'fz\\_%'").fetchall()
        for (gid,) in left:
            self.conns['owner'].execute(f"ROLLBACK PREPARED '{gid}'")

    def account(self, stmt, st, case):
        state = st or 'ok'
        self.count(stmt.label, state)
        if stmt.is_call:
            self.calls += 1
            self.covered.add(stmt.label)
        if stmt.dml_table:
            for fn in self.triggers.get(stmt.dml_table, ()):
                self.count(fn, state)
                self.covered.add(fn)
            if stmt.dml_table and self.triggers.get(stmt.dml_table):
                self.calls += 1

    def reload_triggers(self):
        rows = self.conns['owner'].execute("""
SELECT c.relname, p.proname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'agentcache' AND c.relname LIKE 'fz\\_%' ORDER BY 1, 2""").fetchall()
        self.triggers = {}
        for rel, fn in rows:
            self.triggers.setdefault(rel, [])
            if fn not in self.triggers[rel]:
                self.triggers[rel].append(fn)

    def run_post(self, case, stmt, conn):
        if stmt.post[0] == 'lwlock_free':
            v = self.conns['owner'].execute("SELECT agentcache._boundary_selftest('lwlock')").fetchone()[0]
            if v != 1:
                self.fail(case, stmt, "the self-test LWLock is still held after a C++ exception (leaked lock)")
        elif stmt.post[0] == 'put_get':
            _, ns, key, value = stmt.post
            sql = f"SELECT agentcache.get({ns}::text, {key}::text) IS NOT DISTINCT FROM ({value})::jsonb"
            st, msg = None, None
            try:
                ok = conn.execute(sql).fetchone()[0]
            except psycopg.Error as e:
                st, msg = e.sqlstate, str(e)
                ok = None
            if st is not None and st not in (NO_PRIV,):
                self.fail(case, stmt, f"get after a successful put raised {st}", f"{st}: {msg}\n  check: {sql}")
            elif ok is False:
                self.fail(case, stmt, "get right after a successful put (long ttl) does not return the value",
                          f"check: {sql}")

    # ------------------------------------------------------------ map bookkeeping
    def map_key(self, expr):
        """The map name of a literal argument expression, or None."""
        if expr.startswith("'") and expr.endswith("'") and "'" not in expr[1:-1].replace("''", ""):
            return expr[1:-1].replace("''", "'")
        return None

    def apply_track(self, ev, dirtied, unknown=False):
        if ev[0] == 'reset':
            for k in list(self.maps):
                self.maps[k] = 'unknown'
            return
        name = self.map_key(ev[1])
        if name is None:
            return
        if unknown:
            self.maps[name] = 'unknown'
            return
        if ev[0] == 'define':
            ti = ev[2]
            if ti is None:
                self.maps[name] = 'unknown'
                return
            t = MAP_QUERIES[ti]
            if not t[3] or any(s in dirtied for s in t[2]):
                self.maps[name] = ('stored', ti)
            else:
                self.maps[name] = ('clean', ti)
        elif ev[0] == 'refresh':
            cur = self.maps.get(name)
            if isinstance(cur, tuple):
                t = MAP_QUERIES[cur[1]]
                if t[3] and not any(s in dirtied for s in t[2]):
                    self.maps[name] = ('clean', cur[1])
        elif ev[0] == 'drop':
            self.maps[name] = 'absent'

    def dirty_source(self, table):
        for name, st in list(self.maps.items()):
            if isinstance(st, tuple) and table in MAP_QUERIES[st[1]][2]:
                self.maps[name] = ('stored', st[1])

    # ------------------------------------------------------------ cache checks
    def check_caches(self, where):
        own = self.conns['owner']
        own.execute("SET statement_timeout = '120s'")
        self.checked['rounds'] += 1
        t0 = time.monotonic()
        try:
            for name, fn in (('sessions', self._check_sessions), ('maps', self._check_maps),
                             ('ttl', self._check_ttl), ('dedup', self._check_dedup)):
                t1 = time.monotonic()
                fn(own, where)
                self.check_time[name] = self.check_time.get(name, 0.0) + time.monotonic() - t1
            for role in ('owner', 'app'):
                c = self.conns[role]
                for sql in ("SELECT agentcache.health()", "SELECT * FROM agentcache.stats()",
                            "SELECT count(*) FROM agentcache.stats"):
                    try:
                        c.execute(sql).fetchall()
                    except psycopg.Error as e:
                        self.fail(None, None, f"{sql} as {role} failed ({where}): {e.sqlstate}: {e}")
        finally:
            own.execute(f"SET statement_timeout = {self.base_timeout}")
            self.check_seconds += time.monotonic() - t0

    def _in_txn(self, own, fn, iso='REPEATABLE READ'):
        own.execute(f"BEGIN ISOLATION LEVEL {iso}")
        try:
            return fn()
        finally:
            own.execute("ROLLBACK")

    def _check_sessions(self, own, where):
        # READ COMMITTED: get_context serves the shared-memory cache; REPEATABLE READ:
        # it must agree with the table within the transaction's snapshot (API.md)
        for iso in ('READ COMMITTED', 'REPEATABLE READ'):
            self._check_sessions_in(own, f"{where}, {iso}", iso)

    def _check_sessions_in(self, own, where, iso):
        rc = iso == 'READ COMMITTED'
        def body():
            sessions = [r[0] for r in own.execute(
                "SELECT DISTINCT session_id FROM agentcache.turns ORDER BY 1").fetchall()]
            for s in SESSIONS:
                if s not in sessions:
                    sessions.append(s)
            if iso == 'READ COMMITTED':
                self.checked['sessions'] += len(sessions)
            combos = ((1, None), (30, None), (31, None), (100, None), (30, 10), (30, 5000)) if rc else \
                ((30, None),)
            for n, c in combos:
                bad = own.execute(
                    "SELECT s FROM unnest(%s::text[]) s WHERE agentcache.get_context(s, %s, %s) "
                    "IS DISTINCT FROM fz_check.expected_context(s, %s, %s) LIMIT 3", (sessions, n, c, n, c)).fetchall()
                if bad:
                    s = bad[0][0]
                    detail = own.execute("SELECT agentcache.get_context(%s, %s, %s)::text, "
                                         "fz_check.expected_context(%s, %s, %s)::text",
                                         (s, n, c, s, n, c)).fetchone()
                    return (f"get_context(s, {n}, {c}) differs from agentcache.turns for sessions "
                            f"{[b[0][:40] for b in bad]} ({where})\n  get_context: {detail[0][:600]}\n"
                            f"  expected:    {detail[1][:600]}\n  repro: SELECT agentcache.get_context({q(s)}, {n}, "
                            f"{'NULL' if c is None else c})")
            for n in ((1, 30, 100) if rc else (30,)):
                bad = own.execute(
                    "SELECT s FROM unnest(%s::text[]) s WHERE fz_check.actual_turns(s, %s) "
                    "IS DISTINCT FROM fz_check.expected_turns(s, %s) LIMIT 3", (sessions, n, n)).fetchall()
                if bad:
                    return f"get_turns(s, {n}) differs from agentcache.turns for sessions {bad} ({where})"
            return None
        try:
            msg = self._in_txn(own, body, iso)
        except psycopg.Error as e:
            msg = f"session check raised {e.sqlstate}: {e}"
        if msg:
            self.fail(None, None, msg)

    def _check_maps(self, own, where):
        rows = own.execute("SELECT name, query, search_path FROM agentcache.maps ORDER BY name").fetchall()
        catalog = {r[0]: (r[1], r[2]) for r in rows}
        for name in sorted(self.maps):
            st = self.maps[name]
            if st == 'absent' and name not in catalog:
                try:
                    own.execute("SELECT agentcache.lookup(%s, 'k1')", (name,))
                    self.fail(None, None, f"lookup of dropped map {name!r} did not raise 42704 ({where})")
                except psycopg.Error as e:
                    if e.sqlstate != UNDEFINED:
                        self.fail(None, None, f"lookup of dropped map {name!r}: {e.sqlstate}: {e}")
                continue
            if not (isinstance(st, tuple) and st[0] == 'clean') or name not in catalog:
                continue
            query, path = catalog[name]
            if query != MAP_QUERIES[st[1]][0]:
                continue   # replaced meanwhile by a definition this fuzzer did not track
            own.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            try:
                own.execute(f"SET LOCAL search_path TO {path}")
                bad = own.execute(
                    f"SELECT s.k, agentcache.lookup(%s, s.k)::text, s.v::text FROM (SELECT q.k::text AS k, "
                    f"q.v::jsonb AS v FROM ({query.replace('%', '%%')}) AS q(k, v) WHERE q.k IS NOT NULL) s "
                    f"WHERE agentcache.lookup(%s, s.k) IS DISTINCT FROM s.v LIMIT 3", (name, name)).fetchall()
                absent = own.execute("SELECT agentcache.lookup(%s, '__fz_absent__') IS NULL", (name,)).fetchone()[0]
                self.checked['maps'] += 1
                self.checked['map keys'] += own.execute(
                    f"SELECT count(*) FROM ({query}) AS q(k, v) WHERE q.k IS NOT NULL").fetchone()[0]
            except psycopg.Error as e:
                bad, absent = [(None, f'{e.sqlstate}: {e}', None)], True
            finally:
                own.execute("ROLLBACK")
            if bad or not absent:
                self.fail(None, None, f"map {name!r} differs from its query {query!r} ({where}): "
                                      f"(key, lookup, query) = {bad[:3]}, absent key NULL: {absent}")

    def _check_ttl(self, own, where):
        def body():
            self.checked['entries'] += own.execute("SELECT count(*) FROM agentcache.entries").fetchone()[0]
            bad = own.execute("""
SELECT e.namespace, e.key, agentcache.get(e.namespace, e.key)::text, e.value::text, e.expires_at::text
FROM agentcache.entries e
WHERE (e.expires_at IS NULL OR e.expires_at > clock_timestamp() + interval '3 seconds')
  AND agentcache.get(e.namespace, e.key) IS DISTINCT FROM e.value LIMIT 3""").fetchall()
            if bad:
                return f"get(ns, key) differs from agentcache.entries ({where}): {[tuple(str(x)[:80] for x in b) for b in bad]}"
            bad = own.execute("""
SELECT e.namespace, e.key FROM agentcache.entries e
WHERE e.expires_at < clock_timestamp() AND agentcache.get(e.namespace, e.key) IS NOT NULL LIMIT 3""").fetchall()
            if bad:
                return f"get(ns, key) returns expired entries ({where}): {bad}"
            bad = own.execute("""
SELECT e.namespace, e.key FROM agentcache.entries e
WHERE e.expires_at > clock_timestamp() - interval '1 minute'
  AND agentcache.get_stale(e.namespace, e.key, interval '1000 years') IS DISTINCT FROM e.value LIMIT 3""").fetchall()
            if bad:
                return f"get_stale(ns, key, '1000 years') differs from agentcache.entries ({where}): {bad}"
            bad = own.execute("""
SELECT n.namespace, n.max_entries, count(e.key) FROM agentcache.namespaces n
JOIN agentcache.entries e ON e.namespace = n.namespace
WHERE n.max_entries IS NOT NULL GROUP BY 1, 2 HAVING count(e.key) > n.max_entries""").fetchall()
            if bad:
                return f"namespaces holding more than max_entries ({where}): {bad}"
            return None
        try:
            msg = self._in_txn(own, body, 'READ COMMITTED')
        except psycopg.Error as e:
            msg = f"TTL check raised {e.sqlstate}: {e}"
        if msg:
            self.fail(None, None, msg)

    def _check_dedup(self, own, where):
        def body():
            self.checked['dedup rows'] += own.execute("SELECT count(*) FROM agentcache.dedup").fetchone()[0]
            bad = own.execute("""
SELECT d.message_id, d.state, s.state FROM agentcache.dedup d
LEFT JOIN LATERAL agentcache.dedup_state(d.message_id) s ON true
WHERE (d.expires_at IS NULL OR d.expires_at > clock_timestamp() + interval '3 seconds')
  AND NOT (d.state = 'processing' AND d.holder_pid IS NULL)  -- released: no state (API.md 0.2.0)
  AND (s.state IS DISTINCT FROM d.state OR s.attempts IS DISTINCT FROM d.attempts) LIMIT 3""").fetchall()
            if bad:
                return f"dedup_state differs from agentcache.dedup ({where}): {bad}"
            return None
        try:
            msg = self._in_txn(own, body, 'READ COMMITTED')
        except psycopg.Error as e:
            msg = f"dedup check raised {e.sqlstate}: {e}"
        if msg:
            self.fail(None, None, msg)

    # ------------------------------------------------------------ main loop
    def run(self):
        t0 = time.monotonic()
        self.t0 = t0
        start, stop = self.args.case_from, self.args.cases
        self.ncases = 0
        for idx in range(start, stop):
            case = self.gen_case(idx)
            if self.args.print_only:
                print(f"-- case {idx} role={case.role}\n{case.script()}\n")
                continue
            if self.args.verbose:
                print(f"-- case {idx} role={case.role}\n{case.script()}", flush=True)
            try:
                try:
                    self.run_case(case)
                except psycopg.Error as e:
                    if any(c.broken or c.closed for c in self.conns.values()):
                        raise Failure(f"connection lost: {e!r} -- a backend crashed (the postmaster "
                                      "then ends every backend) or the server went away")
                    raise Failure(f"unexpected error outside a fuzzed statement: {e.sqlstate}: {e!r}")
                self.ncases += 1
                if (idx + 1) % self.args.alive_every == 0:
                    self.check_alive(f"after case {idx}")
                if (idx + 1) % self.args.check_every == 0:
                    self.check_caches(f"after case {idx}")
                    if not self.args.quiet:
                        print(f"fuzz: {idx + 1 - start} cases, {self.calls} calls, "
                              f"{time.monotonic() - t0:.0f} s", flush=True)
            except Failure as e:
                self.failures += 1
                print(f"\nFAILURE: {e}")
                cs, stmt = self.current or (case, None)
                self.print_case(cs, stmt)
                return self.finish(1)
        if self.args.print_only:
            return 0
        try:
            self.check_alive('at the end')
            self.check_caches('at the end')
        except Failure as e:
            self.failures += 1
            print(f"\nFAILURE: {e}")
        return self.finish(1 if self.failures else 0)

    def finish(self, rc):
        elapsed = time.monotonic() - getattr(self, 't0', time.monotonic())
        labels = sorted({k[0] for k in self.counts})
        states = sorted({k[1] for k in self.counts}, key=lambda s: (s != 'ok', s))
        print("\nfunction x SQLSTATE (calls; trigger functions: DML statements while attached)")
        w = max([len(x) for x in labels] + [8])
        print(f"{'':{w}}  " + ' '.join(f"{s:>6}" for s in states))
        for lab in labels:
            print(f"{lab:{w}}  " + ' '.join(f"{self.counts.get((lab, s), 0) or '.':>6}" for s in states))
        missing = sorted({f.name for f in self.funcs} - self.covered)
        if missing:
            print(f"not exercised: {', '.join(missing)}")
        print("cache checks: " + ', '.join(f"{k} {v}" for k, v in self.checked.items()) +
              f" (summed over the rounds; {self.check_seconds:.1f} s: " +
              ', '.join(f"{k} {v:.1f} s" for k, v in self.check_time.items()) + ")")
        print(f"warnings received: {self.warnings}; runtime {elapsed:.1f} s")
        print(f"fuzz: seed={self.seed} cases={self.ncases} calls={self.calls} "
              f"functions={len(self.covered & {f.name for f in self.funcs})} failures={self.failures}", flush=True)
        return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--seed', type=int, default=None, help='random seed (default: random, printed)')
    ap.add_argument('--cases', type=int, default=3000, help='run cases [case-from, cases)')
    ap.add_argument('--case-from', type=int, default=0, help='first case to run (replay)')
    ap.add_argument('--dsn', default='', help='libpq connection string (default: PG* environment)')
    ap.add_argument('--statement-timeout', type=int, default=5000, help='ms (default 5000)')
    ap.add_argument('--check-every', type=int, default=500, help='cache checks every N cases')
    ap.add_argument('--alive-every', type=int, default=25, help='crash checks every N cases')
    ap.add_argument('--keep-going', action='store_true', help='do not stop at the first failure')
    ap.add_argument('--print-only', action='store_true', help='print the cases\' SQL, run nothing')
    ap.add_argument('--verbose', action='store_true', help='print every case before running it')
    ap.add_argument('--quiet', action='store_true')
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2 ** 31)
    print(f"fuzz: seed={args.seed} cases={args.case_from}..{args.cases - 1}", flush=True)
    fz = Fuzzer(args)
    try:
        fz.setup(prepare=not args.print_only)
    except psycopg.Error as e:
        print(f"fuzz: setup failed: {e}", flush=True)
        sys.exit(2)
    sys.exit(fz.run())


if __name__ == '__main__':
    main()
