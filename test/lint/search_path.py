#!/usr/bin/env python3
"""The search_path lint: every SQL text agentcache runs is fully qualified.

Scans the install and upgrade scripts (sql/agentcache--*.sql) and the SQL
string literals of the C++ glue (src/pg/**/*.cpp, *.hpp: adjacent literals are
joined; a text starting with SELECT, INSERT, UPDATE, DELETE or WITH is SQL),
and fails on anything that would resolve through a search_path a caller or a
database owner controls:

  * an operator not written OPERATOR(pg_catalog.<op>)   (x = y, a || b, t @> u)
  * a function called without a schema                   (now(), count(*))
  * a table, view or function in FROM/JOIN/INTO/UPDATE/TABLE without a schema
  * a cast to an unqualified type                         (x::text)
  * JOIN ... USING (...) and NATURAL joins, which resolve = unqualified
  * NULLIF, IS DISTINCT FROM, BETWEEN, IN (...) and LIKE, which do too

Allowed: assignments (UPDATE ... SET c = v, SET search_path = ..., WITH
(fillfactor = 80)), named arguments (=>), * in SELECT * / count(*), the
bodies of functions that pin `SET search_path = pg_catalog, pg_temp` (their
names resolve in pg_catalog), and DDL type names (resolved once, at install,
on the search_path CREATE EXTENSION pins).

Run from anywhere: exits 1 and prints file:line: reason for each violation.
`--selftest` checks that known-bad texts are caught and known-good ones pass.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Words that may be followed by "(" without being a function call.
PAREN_KEYWORDS = {
    "in", "any", "all", "some", "exists", "values", "array", "coalesce", "cast", "over", "filter", "within",
    "row", "table", "conflict", "key", "unique", "check", "references", "with", "using", "and", "or", "not",
    "as", "on", "select", "where", "returns", "from", "join", "by", "when", "then", "else", "case", "is",
    "if", "into", "returning", "set", "limit", "offset", "grouping", "lateral", "primary", "foreign", "default",
    "exclude", "include", "distinct", "greatest", "least", "trigger", "function", "procedure", "index", "view",
    "execute", "perform", "raise", "elsif", "loop", "while", "return", "create", "replace", "language",
    "do", "update", "delete", "insert", "order", "group", "having", "union", "except", "intersect", "ordinality",
}
# Keywords that introduce a relation (or a set-returning function) in a FROM-like position.
RELATION_KEYWORDS = {"from", "join", "into", "update", "table"}
# Things that may follow FROM and are not relations.
NOT_RELATIONS = {"public", "only", "lateral", "rows", "unnest"}
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)
OPERATOR_CHARS = set("+-*/<>=~!@#%^&|`?")

TOKEN = re.compile(
    r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$.*?\$(?P=tag)?\$)
  | (?P<string>[EeBbXxNn]?'(?:''|\\.|[^'])*')
  | (?P<param>\$\d+)
  | (?P<name>(?:"[^"]+"|[A-Za-z_][A-Za-z_0-9$]*)(?:\s*\.\s*(?:"[^"]+"|[A-Za-z_][A-Za-z_0-9$]*|\*))*)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<cast>::)
  | (?P<assign>:=)
  | (?P<op>[+\-*/<>=~!@#%^&|`?]+)
  | (?P<punct>[()\[\],;:.])
    """,
    re.S | re.X,
)


def tokenize(sql):
    out, pos = [], 0
    while pos < len(sql):
        m = TOKEN.match(sql, pos)
        if not m:
            out.append(("punct", sql[pos], pos))
            pos += 1
            continue
        kind = m.lastgroup if m.lastgroup != "tag" else "dollar"
        if kind != "ws":
            out.append((kind, m.group(0), pos))
        pos = m.end()
    return out


def is_qualified(name):
    return "." in name


def lint_sql(sql):
    """Returns [(offset, reason)] for one SQL text (one or more statements)."""
    toks = tokenize(sql)
    bad = []
    low = [t[1].lower() if t[0] == "name" else t[1] for t in toks]
    depth = 0
    set_depth = None  # paren depth of an open SET list (UPDATE ... SET a = b, ...)
    with_opts_depth = None  # WITH (storage_parameter = value)
    pinned = "set search_path = pg_catalog, pg_temp" in re.sub(r"\s+", " ", sql.lower())
    for i, (kind, text, off) in enumerate(toks):
        prev = low[i - 1] if i > 0 else ""
        prev2 = low[i - 2] if i > 1 else ""
        nxt = low[i + 1] if i + 1 < len(toks) else ""
        if text == "(":
            depth += 1
            if prev == "with" and with_opts_depth is None:
                with_opts_depth = depth
        elif text == ")":
            if set_depth is not None and depth <= set_depth:
                set_depth = None
            if with_opts_depth == depth:
                with_opts_depth = None
            depth -= 1
        elif text == ";":
            set_depth = None
        if kind == "name":
            word = low[i]
            if word == "set":
                set_depth = depth
            elif word in ("where", "returning", "from") and set_depth == depth:
                set_depth = None
            if word == "natural":
                bad.append((off, "NATURAL join resolves = through the search_path"))
            if word in ("nullif", "between", "like", "ilike", "similar") or (word == "distinct" and prev == "is"):
                bad.append((off, f"{text} resolves an operator through the search_path"))
            if word == "in" and nxt == "(":
                bad.append((off, "IN (...) resolves = through the search_path: use OPERATOR(pg_catalog.=) ANY"))
            if word == "using" and nxt == "(" and _after_join(low, i):
                bad.append((off, "JOIN ... USING resolves = through the search_path: use ON ... OPERATOR(pg_catalog.=)"))
            # function calls
            if nxt == "(" and not is_qualified(word) and word not in PAREN_KEYWORDS and prev not in ("as", "using") \
                    and not (prev in ("on",) and prev2 == "index") and prev != "operator":
                if not pinned and not _is_ddl_name(low, i):
                    bad.append((off, f"function {text}() without a schema"))
            # relations
            if prev in RELATION_KEYWORDS and not is_qualified(word) and word not in NOT_RELATIONS \
                    and word not in PAREN_KEYWORDS and not _is_cte(low, word) and not pinned:
                if not (prev == "update" and prev2 in ("do", "for", "key", "no")) and \
                        not (prev == "into" and prev2 in ("insert",) and False):
                    bad.append((off, f"relation {text} without a schema"))
        elif kind == "cast":
            if nxt and not is_qualified(nxt) and not pinned:
                bad.append((off, f"cast to {toks[i + 1][1]} without a schema"))
        elif kind == "op":
            if text in ("=>",):
                continue
            if text == "*" and (prev in ("(", ",", "select") or prev.endswith(".")):
                continue
            if text.endswith("*") and prev.endswith("."):
                continue
            if text == "=" and (set_depth is not None or with_opts_depth is not None):
                continue
            if prev == "(" and prev2 == "operator":
                continue  # OPERATOR(pg_catalog.=) is tokenized as a name "pg_catalog." + op: see below
            if pinned:
                continue
            bad.append((off, f"operator {text} without OPERATOR(pg_catalog.{text})"))
    return _drop_qualified_operators(sql, bad)


def _after_join(low, i):
    """Whether the USING at i closes a JOIN clause (JOIN x [alias] USING / JOIN (subquery) alias USING)."""
    j, depth = i - 1, 0
    while j >= 0:
        t = low[j]
        if t == ")":
            depth += 1
        elif t == "(":
            if depth == 0:
                return False
            depth -= 1
        elif depth == 0:
            if t == "join":
                return True
            if t in ("on", "where", "select", ";", "delete", "index"):
                return False
        j -= 1
    return False


def _is_cte(low, word):
    for j in range(len(low) - 2):
        if low[j] == word and low[j + 1] == "as" and low[j + 2] == "(":
            return True
    return False


def _is_ddl_name(low, i):
    """A column, type or table name in a DDL or parameter list (CREATE ..., RETURNS TABLE(...))."""
    return low[i - 1] in ("table", "view", "type") if i else False


def _drop_qualified_operators(sql, bad):
    """OPERATOR(pg_catalog.=) contains an operator token: drop findings inside such a construct."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"OPERATOR\s*\(\s*pg_catalog\s*\.\s*[^)\s]+\s*\)", sql, re.I)]
    return [(off, why) for off, why in bad if not any(a <= off < b for a, b in spans)]


# ------------------------------------------------------------------ sources


def cpp_sql_texts(path):
    """(line, text) of each SQL text in a C++ file: adjacent string literals joined."""
    src = path.read_text()
    lit = re.compile(r'"((?:\\.|[^"\\])*)"')
    out = []
    pos = 0
    while True:
        m = lit.search(src, pos)
        if not m:
            break
        # skip #include "..." and character constants
        line_start = src.rfind("\n", 0, m.start()) + 1
        if src[line_start:m.start()].lstrip().startswith("#"):
            pos = m.end()
            continue
        parts, end = [m.group(1)], m.end()
        while True:
            n = re.match(r'\s*(?://[^\n]*\n\s*)*"((?:\\.|[^"\\])*)"', src[end:])
            if not n:
                break
            parts.append(n.group(1))
            end += n.end()
        text = "".join(parts).encode().decode("unicode_escape")
        if SQL_START.match(text):
            out.append((src.count("\n", 0, m.start()) + 1, text))
        pos = end
    return out


def sql_script_texts(path):
    """(line, statement) of each statement of an install/upgrade script; the
    bodies of LANGUAGE sql/plpgsql functions are linted as part of theirs."""
    src = path.read_text()
    src = re.sub(r"^\\echo.*$", "", src, flags=re.M)
    out, start = [], 0
    for m in re.finditer(r"(\$[A-Za-z_]*\$).*?\1|'(?:''|[^'])*'|--[^\n]*|;", src, re.S):
        if m.group(0) == ";":
            stmt = src[start:m.end()]
            if stmt.strip(" \n;"):
                out.append((src.count("\n", 0, start) + 1 + len(stmt) - len(stmt.lstrip("\n")), stmt))
            start = m.end()
    return out


def lint_function_bodies(stmt):
    """Bodies of CREATE FUNCTION ... LANGUAGE plpgsql|sql AS $$ ... $$, as SQL."""
    m = re.match(r"\s*CREATE\s+(OR\s+REPLACE\s+)?FUNCTION", stmt, re.I)
    if not m or not re.search(r"LANGUAGE\s+(plpgsql|sql)\b", stmt, re.I):
        return []
    pinned = re.search(r"SET\s+search_path\s*=\s*pg_catalog\s*,\s*pg_temp", stmt, re.I) is not None
    out = []
    for b in re.finditer(r"(\$[A-Za-z_]*\$)(.*?)\1", stmt, re.S):
        if pinned:
            continue
        for off, why in lint_sql(b.group(2)):
            out.append((b.start(2) + off, "in the function body: " + why))
    return out


def main(argv):
    if "--selftest" in argv:
        return selftest()
    findings = []
    for path in sorted((ROOT / "sql").glob("agentcache--*.sql")):
        for line, stmt in sql_script_texts(path):
            # DDL is resolved once, at install, with the search_path CREATE EXTENSION pins;
            # what runs later is the bodies of SQL-language functions.
            for off, why in lint_function_bodies(stmt):
                findings.append(f"{path.relative_to(ROOT)}:{line + stmt.count(chr(10), 0, off)}: {why}")
            if re.match(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", stmt, re.I):
                for off, why in lint_sql(stmt):
                    findings.append(f"{path.relative_to(ROOT)}:{line + stmt.count(chr(10), 0, off)}: {why}")
    for path in sorted((ROOT / "src" / "pg").rglob("*.[ch]pp")):
        for line, text in cpp_sql_texts(path):
            for off, why in lint_sql(text):
                findings.append(f"{path.relative_to(ROOT)}:{line}: {why} in \"{text[max(0, off - 30):off + 30]}\"")
    for f in findings:
        print(f"search_path: {f}", file=sys.stderr)
    if not findings:
        print("search_path: every SQL text agentcache runs is fully qualified")
    return 1 if findings else 0


BAD = [
    "SELECT n.namespace, COALESCE(e.cnt, 0) FROM agentcache.namespaces n LEFT JOIN (SELECT namespace, "
    "pg_catalog.count(*) AS cnt FROM agentcache.entries GROUP BY namespace) e USING (namespace)",
    "SELECT 1 FROM agentcache.maps WHERE name = $1",
    "SELECT now()",
    "SELECT 1 FROM maps",
    "SELECT $1::text",
    "SELECT 1 FROM agentcache.a NATURAL JOIN agentcache.b",
    "DELETE FROM agentcache.turns WHERE seq IN (1, 2)",
    "DELETE FROM agentcache.turns WHERE seq IN (SELECT 1)",
    "SELECT NULLIF($1, $2)",
    "SELECT a || b FROM agentcache.t",
    "UPDATE agentcache.maps SET entries = entries + 1",
    "SELECT * FROM agentcache.t WHERE x IS DISTINCT FROM y",
]
GOOD = [
    "SELECT n.namespace FROM agentcache.namespaces n LEFT JOIN agentcache.entries e ON e.namespace "
    "OPERATOR(pg_catalog.=) n.namespace",
    "UPDATE agentcache.maps SET last_error = $2, entries = $3 WHERE name OPERATOR(pg_catalog.=) $1",
    "SELECT pg_catalog.count(*) FROM agentcache.entries",
    "INSERT INTO agentcache.dedup AS d (message_id, state) VALUES ($1, 'x') ON CONFLICT (message_id) DO UPDATE "
    "SET state = 'y' WHERE NOT (d.state OPERATOR(pg_catalog.=) 'completed') RETURNING attempts",
    "SELECT pg_catalog.make_interval(secs => $3::pg_catalog.float8)",
    "DELETE FROM agentcache.e WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM agentcache.e LIMIT $2))",
]


def selftest():
    failed = 0
    for sql in BAD:
        if not lint_sql(sql):
            print(f"search_path selftest: not caught: {sql}", file=sys.stderr)
            failed = 1
    for sql in GOOD:
        if lint_sql(sql):
            print(f"search_path selftest: false alarm {lint_sql(sql)}: {sql}", file=sys.stderr)
            failed = 1
    if not failed:
        print(f"search_path selftest: {len(BAD)} bad texts caught, {len(GOOD)} good ones pass")
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
