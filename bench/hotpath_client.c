/*
 * hotpath_client: the inbound-message hot path and message deduplication,
 * measured from one client program (libpq + hiredis) so that agentcache,
 * plain SQL and the Redis path all go through the same harness.
 * bench/run.sh compiles and runs it; see bench/README.md for each mode.
 *
 *   hotpath_client -m MODE -c CONNS -T SECONDS -d PG_CONNINFO [-r REDIS]
 *                  [-s SESSIONS] [-i INSTANCES] [-t CONTEXT_TURNS] [-p PREFIX]
 *
 * MODE: agentcache | agentcache_nolease | plainsql | redis | redis_pipelined | redis_pg_full | dedup |
 *       dedup_plain | takeover | outbox
 *       (measured), or prewarm_redis (loads routes and context lists, once).
 * REDIS: a Unix socket path (starts with '/') or HOST:PORT.
 *
 * Each of CONNS threads opens its own PostgreSQL connection (and Redis
 * connection where the mode needs one), prepares every SQL statement
 * (PQprepare), waits for the others, then runs operations until SECONDS have
 * passed. An operation is one whole message (inbound + outbound, or begin +
 * complete); its wall-clock time (CLOCK_MONOTONIC) goes into a per-thread
 * array. Thread t only uses sessions s with (s - 1) % CONNS == t, as a worker
 * that owns its conversations would, so no two connections append to the same
 * session at once. Message ids are unique per operation (PREFIX-thread-n).
 * Any unexpected reply stops the run with exit status 1.
 *
 * Output (one line, stdout):
 *   RESULT mode=M conns=C ops=N secs=S ops_per_s=X p50_ms=P p99_ms=Q
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum mode {
  M_AGENTCACHE,
  M_PLAINSQL,
  M_REDIS,
  M_REDIS_PIPELINED,
  M_DEDUP,
  M_DEDUP_PLAIN,
  M_PREWARM_REDIS,
  M_REDIS_PG_FULL,
  M_AGENTCACHE_NOLEASE,
  M_TAKEOVER,
  M_OUTBOX
};
static const char *const MODE_NAMES[] = {"agentcache", "plainsql", "redis", "redis_pipelined",
                                         "dedup", "dedup_plain", "prewarm_redis", "redis_pg_full",
                                         "agentcache_nolease", "takeover", "outbox"};

static enum mode g_mode;
static int g_conns = 1, g_seconds = 5, g_sessions = 1000, g_instances = 1000, g_turns = 30;
static const char *g_conninfo = NULL, *g_redis = NULL, *g_prefix = "m";
static double g_t0, g_deadline;
static pthread_barrier_t g_barrier;
static volatile int g_failed = 0;

/* the message the user sends and the reply the "LLM" gives: ~60 and ~200 characters */
static const char *const BODY = "Can I move my appointment to Friday morning? Thanks, see you then";
static const char *const REPLY =
    "Of course. Friday 10:30 is free with the same doctor; I have moved your appointment there and you "
    "will get a reminder the day before. Reply CANCEL at any time if the new time does not suit you.";

/* the same record resolve_instance() returns, built from the two tables */
#define ROUTE_SQL                                                                                   \
  "SELECT jsonb_build_object('clinic_id', c.id, 'name', c.name, 'timezone', c.timezone, 'phone', "  \
  "c.phone, 'settings', c.settings, 'provider', i.provider) FROM public.integrations i JOIN "       \
  "public.clinics c ON c.id = i.clinic_id"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("hotpath_client: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  g_failed = 1;
}

struct worker {
  int id;
  PGconn *pg;
  PGconn *pg2; /* takeover: the holder whose lease runs out */
  redisContext *rc;
  uint64_t rng;
  long n_ops, cap;
  double *lat; /* seconds per operation */
  double end;
  char sess[64], inst[64], msg[96];
  long msg_no;
};

static uint64_t next_rand(struct worker *w) { /* xorshift64* */
  w->rng ^= w->rng >> 12;
  w->rng ^= w->rng << 25;
  w->rng ^= w->rng >> 27;
  return w->rng * 2685821657736338717ULL;
}

static void pick(struct worker *w) {
  long per = (g_sessions - 1 - w->id) / g_conns + 1; /* sessions this thread owns */
  long s = 1 + w->id + (long)g_conns * (long)(next_rand(w) % (uint64_t)per);
  snprintf(w->sess, sizeof w->sess, "sess-%ld", s);
  snprintf(w->inst, sizeof w->inst, "inst-%lu", 1 + (unsigned long)(next_rand(w) % (uint64_t)g_instances));
  snprintf(w->msg, sizeof w->msg, "%s-%d-%ld", g_prefix, w->id, ++w->msg_no);
}

/* ---------------------------------------------------------------- libpq */

static int prep(struct worker *w, const char *name, const char *sql, int nparams) {
  PGresult *r = PQprepare(w->pg, name, sql, nparams, NULL);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) fail("prepare %s: %s", name, PQerrorMessage(w->pg));
  PQclear(r);
  return ok;
}

/* Runs a prepared statement; expects `rows` rows (-1: any number, -2: a
 * command without rows). Returns the result (caller clears) or NULL. */
static PGresult *run(struct worker *w, const char *name, int n, const char *const *params, int rows) {
  PGresult *r = PQexecPrepared(w->pg, name, n, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (rows == -2 ? st != PGRES_COMMAND_OK : st != PGRES_TUPLES_OK) {
    fail("%s (thread %d, message %s): %s", name, w->id, w->msg, PQerrorMessage(w->pg));
    PQclear(r);
    return NULL;
  }
  if (rows >= 0 && PQntuples(r) != rows) {
    fail("%s (thread %d, message %s): %d rows, expected %d", name, w->id, w->msg, PQntuples(r), rows);
    PQclear(r);
    return NULL;
  }
  return r;
}

/* run + expect the single value `want` (NULL: anything non-null) */
static int run_expect(struct worker *w, const char *name, int n, const char *const *params, const char *want) {
  PGresult *r = run(w, name, n, params, 1);
  if (!r) return 0;
  int ok = !PQgetisnull(r, 0, 0) && (!want || strcmp(PQgetvalue(r, 0, 0), want) == 0);
  if (!ok) fail("%s (thread %d, message %s): got '%s', expected '%s'", name, w->id, w->msg,
                PQgetisnull(r, 0, 0) ? "NULL" : PQgetvalue(r, 0, 0), want ? want : "a value");
  PQclear(r);
  return ok;
}

static int run_cmd(struct worker *w, const char *name) {
  PGresult *r = run(w, name, 0, NULL, -2);
  if (!r) return 0;
  PQclear(r);
  return 1;
}

/* ---------------------------------------------------------------- hiredis */

static redisContext *redis_connect(void) {
  struct timeval tv = {5, 0};
  redisContext *c;
  if (g_redis[0] == '/') {
    c = redisConnectUnixWithTimeout(g_redis, tv);
  } else {
    char host[256];
    const char *colon = strrchr(g_redis, ':');
    if (!colon || (size_t)(colon - g_redis) >= sizeof host) {
      fail("bad -r '%s' (want /path/to/socket or HOST:PORT)", g_redis);
      return NULL;
    }
    memcpy(host, g_redis, (size_t)(colon - g_redis));
    host[colon - g_redis] = '\0';
    c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
  }
  if (!c || c->err) {
    fail("redis connect %s: %s", g_redis, c ? c->errstr : "out of memory");
    if (c) redisFree(c);
    return NULL;
  }
  return c;
}

/* checks one reply: type `type` (and for status replies the text "OK") */
static int redis_check(struct worker *w, redisReply *rep, int type, const char *what) {
  if (!rep) {
    fail("redis %s (thread %d): %s", what, w->id, w->rc->errstr);
    return 0;
  }
  int ok = rep->type == type && (type != REDIS_REPLY_STATUS || strcmp(rep->str, "OK") == 0);
  if (!ok)
    fail("redis %s (thread %d, message %s): unexpected reply type %d%s%s", what, w->id, w->msg, rep->type,
         rep->type == REDIS_REPLY_ERROR ? ": " : "", rep->type == REDIS_REPLY_ERROR ? rep->str : "");
  freeReplyObject(rep);
  return ok;
}

static int redis_get_reply(struct worker *w, int type, const char *what) {
  void *rep = NULL;
  if (redisGetReply(w->rc, &rep) != REDIS_OK) rep = NULL;
  return redis_check(w, rep, type, what);
}

/* one context entry, the shape get_context() returns */
static void turn_json(char *buf, size_t n, const char *seq, const char *role, const char *content) {
  time_t t = time(NULL);
  struct tm tm;
  char at[40];
  gmtime_r(&t, &tm);
  strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
  snprintf(buf, n, "{\"at\": \"%s\", \"seq\": %s, \"role\": \"%s\", \"content\": \"%s\"}", at, seq, role, content);
}

/* ---------------------------------------------------------------- modes */

static int exec_simple(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) fail("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  return ok;
}

static int setup(struct worker *w) {
  switch (g_mode) {
  case M_AGENTCACHE_NOLEASE:
    if (!exec_simple(w->pg, "SET agentcache.claim_lease = 0")) return 0;
    /* fall through */
  case M_AGENTCACHE:
    return prep(w, "inbound", "SELECT agentcache.inbound($1, $2, $3, $4)", 4) &&
           prep(w, "outbound", "SELECT agentcache.outbound($1, $2, $3)", 3);
  case M_TAKEOVER: {
    PGresult *r = PQprepare(w->pg2, "hold", "SELECT agentcache.dedup_begin($1, NULL, NULL, NULL, '1 microsecond')", 1,
                            NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    r = PQprepare(w->pg2, "fenced", "SELECT agentcache.dedup_complete($1)", 1, NULL);
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) fail("prepare (holder connection): %s", PQerrorMessage(w->pg2));
    return ok && prep(w, "dedup_begin", "SELECT agentcache.dedup_begin($1)", 1) &&
           prep(w, "dedup_complete", "SELECT agentcache.dedup_complete($1)", 1);
  }
  case M_OUTBOX:
    return prep(w, "resend",
                "SELECT count(agentcache.reply_sent(p.message_id)) FROM agentcache.pending_replies('0 s', 1) p", 0);
  case M_DEDUP:
    return prep(w, "dedup_begin", "SELECT agentcache.dedup_begin($1)", 1) &&
           prep(w, "dedup_complete", "SELECT agentcache.dedup_complete($1)", 1);
  case M_PLAINSQL:
  case M_REDIS:
  case M_REDIS_PIPELINED:
  case M_REDIS_PG_FULL:
  case M_DEDUP_PLAIN:
    break;
  case M_PREWARM_REDIS:
    return 1;
  }
  /* the plain-SQL statements (redis modes use add_turn only) */
  return prep(w, "route", ROUTE_SQL " WHERE i.instance = $1 AND i.active", 1) &&
         prep(w, "lock", "SELECT pg_try_advisory_lock(hashtext($1))", 1) &&
         prep(w, "unlock", "SELECT pg_advisory_unlock(hashtext($1))", 1) &&
         prep(w, "dedup_insert",
              "INSERT INTO public.app_dedup (message_id, state, holder_pid, attempts, updated_at) "
              "VALUES ($1, 'processing', pg_backend_pid(), 1, now()) ON CONFLICT (message_id) DO NOTHING "
              "RETURNING attempts", 1) &&
         prep(w, "dedup_done",
              "UPDATE public.app_dedup SET state = 'completed', holder_pid = NULL, updated_at = now(), "
              "expires_at = now() + interval '1 day' WHERE message_id = $1", 1) &&
         prep(w, "add_turn",
              "INSERT INTO public.app_turns (session_id, seq, role, content, created_at) "
              "SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, now() FROM public.app_turns WHERE session_id = $1 "
              "RETURNING seq", 3) &&
         prep(w, "context",
              "SELECT coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content, "
              "'at', created_at) ORDER BY seq), '[]') FROM (SELECT seq, role, content, created_at FROM "
              "public.app_turns WHERE session_id = $1 ORDER BY seq DESC LIMIT $2::int) t", 2) &&
         prep(w, "dedup_completed",
              "INSERT INTO public.app_dedup (message_id, state, attempts, updated_at, expires_at) "
              "VALUES ($1, 'completed', 1, now(), now() + interval '1 day') ON CONFLICT (message_id) DO UPDATE "
              "SET state = 'completed', holder_pid = NULL, updated_at = now(), expires_at = now() + interval '1 day'",
              1) &&
         prep(w, "begin", "BEGIN", 0) && prep(w, "commit", "COMMIT", 0);
}

static int op_agentcache(struct worker *w) {
  const char *in[4] = {w->inst, w->msg, w->sess, BODY};
  PGresult *r = run(w, "inbound", 4, in, 1);
  if (!r) return 0;
  const char *v = PQgetvalue(r, 0, 0);
  if (!strstr(v, "\"dedup\": \"acquired\"") || strstr(v, "\"route\": null") || strstr(v, "\"context\": []")) {
    fail("inbound (thread %d, message %s): not acquired, or no route or context: %.200s", w->id, w->msg, v);
    PQclear(r);
    return 0;
  }
  PQclear(r);
  const char *out[3] = {w->msg, w->sess, REPLY};
  return run_expect(w, "outbound", 3, out, NULL);
}

/* plainsql inbound: route, claim (lock + state row), user turn, context; the
 * writes commit together, as inbound() commits them */
static int op_plainsql_in(struct worker *w) {
  char turns[16];
  snprintf(turns, sizeof turns, "%d", g_turns);
  const char *p_inst[1] = {w->inst}, *p_msg[1] = {w->msg};
  const char *p_user[3] = {w->sess, "user", BODY}, *p_ctx[2] = {w->sess, turns};
  return run_expect(w, "route", 1, p_inst, NULL) && run_expect(w, "lock", 1, p_msg, "t") && run_cmd(w, "begin") &&
         run_expect(w, "dedup_insert", 1, p_msg, "1") && run_expect(w, "add_turn", 3, p_user, NULL) &&
         run_expect(w, "context", 2, p_ctx, NULL) && run_cmd(w, "commit");
}

/* plainsql outbound: assistant turn + completion in one transaction (as
 * outbound() commits them), then the unlock */
static int op_plainsql_out(struct worker *w) {
  const char *p_msg[1] = {w->msg};
  const char *p_asst[3] = {w->sess, "assistant", REPLY};
  PGresult *r;
  if (!run_cmd(w, "begin") || !run_expect(w, "add_turn", 3, p_asst, NULL)) return 0;
  if (!(r = run(w, "dedup_done", 1, p_msg, -2))) return 0;
  int updated = strcmp(PQcmdTuples(r), "1") == 0;
  PQclear(r);
  if (!updated) {
    fail("dedup_done (thread %d, message %s): no row updated", w->id, w->msg);
    return 0;
  }
  return run_cmd(w, "commit") && run_expect(w, "unlock", 1, p_msg, "t");
}

/* The Redis modes. `pipelined`: GET + SET NX + LRANGE as one pipeline, and
 * RPUSH + LTRIM + DEL as another (else one command per round trip). `full`
 * (redis_pg_full, always pipelined): PostgreSQL also stores what agentcache
 * stores — the assistant turn and the message's completed state are
 * committed together (the durable duplicate record), so each message makes
 * two commits, as inbound() + outbound(); the plain modes insert the two
 * turns in autocommit. */
static int op_redis(struct worker *w, int pipelined, int full) {
  char key_route[96], key_lock[128], key_ctx[96], user_seq[32], asst_seq[32];
  char user_json[512], asst_json[512];
  snprintf(key_route, sizeof key_route, "route:%s", w->inst);
  snprintf(key_lock, sizeof key_lock, "lock:%s", w->msg);
  snprintf(key_ctx, sizeof key_ctx, "ctx:%s", w->sess);
  const char *get[2] = {"GET", key_route};
  const char *set[6] = {"SET", key_lock, "1", "NX", "PX", "300000"};
  char from[16];
  snprintf(from, sizeof from, "-%d", g_turns);
  const char *lrange[4] = {"LRANGE", key_ctx, from, "-1"};
  /* inbound: route, lock, context from Redis; the user turn into PostgreSQL */
  if (pipelined) {
    redisAppendCommandArgv(w->rc, 2, get, NULL);
    redisAppendCommandArgv(w->rc, 6, set, NULL);
    redisAppendCommandArgv(w->rc, 4, lrange, NULL);
    if (!redis_get_reply(w, REDIS_REPLY_STRING, "GET route") || !redis_get_reply(w, REDIS_REPLY_STATUS, "SET NX") ||
        !redis_get_reply(w, REDIS_REPLY_ARRAY, "LRANGE"))
      return 0;
  } else if (!redis_check(w, redisCommandArgv(w->rc, 2, get, NULL), REDIS_REPLY_STRING, "GET route") ||
             !redis_check(w, redisCommandArgv(w->rc, 6, set, NULL), REDIS_REPLY_STATUS, "SET NX") ||
             !redis_check(w, redisCommandArgv(w->rc, 4, lrange, NULL), REDIS_REPLY_ARRAY, "LRANGE")) {
    return 0;
  }
  const char *p_msg[1] = {w->msg};
  const char *p_user[3] = {w->sess, "user", BODY}, *p_asst[3] = {w->sess, "assistant", REPLY};
  PGresult *r = run(w, "add_turn", 3, p_user, 1);
  if (!r) return 0;
  snprintf(user_seq, sizeof user_seq, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  /* outbound: the assistant turn into PostgreSQL (with the completed state
   * when `full`), then the context list and the lock in Redis */
  if (full && !run_cmd(w, "begin")) return 0;
  if (!(r = run(w, "add_turn", 3, p_asst, 1))) return 0;
  snprintf(asst_seq, sizeof asst_seq, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if (full) {
    if (!(r = run(w, "dedup_completed", 1, p_msg, -2))) return 0;
    PQclear(r);
    if (!run_cmd(w, "commit")) return 0;
  }
  turn_json(user_json, sizeof user_json, user_seq, "user", BODY);
  turn_json(asst_json, sizeof asst_json, asst_seq, "assistant", REPLY);
  const char *rpush[4] = {"RPUSH", key_ctx, user_json, asst_json};
  const char *ltrim[4] = {"LTRIM", key_ctx, from, "-1"};
  const char *del[2] = {"DEL", key_lock};
  if (pipelined) {
    redisAppendCommandArgv(w->rc, 4, rpush, NULL);
    redisAppendCommandArgv(w->rc, 4, ltrim, NULL);
    redisAppendCommandArgv(w->rc, 2, del, NULL);
    return redis_get_reply(w, REDIS_REPLY_INTEGER, "RPUSH") && redis_get_reply(w, REDIS_REPLY_STATUS, "LTRIM") &&
           redis_get_reply(w, REDIS_REPLY_INTEGER, "DEL");
  }
  return redis_check(w, redisCommandArgv(w->rc, 4, rpush, NULL), REDIS_REPLY_INTEGER, "RPUSH") &&
         redis_check(w, redisCommandArgv(w->rc, 4, ltrim, NULL), REDIS_REPLY_STATUS, "LTRIM") &&
         redis_check(w, redisCommandArgv(w->rc, 2, del, NULL), REDIS_REPLY_INTEGER, "DEL");
}

/* A fenced takeover, the whole cycle: the holder (second connection) acquires
 * with a lease that has run out at once; the contender takes the message
 * over and completes it; the holder's completion is fenced (55000), which
 * also gives its lock back. */
static int op_takeover(struct worker *w) {
  const char *p[1] = {w->msg};
  PGresult *r = PQexecPrepared(w->pg2, "hold", 1, p, NULL, NULL, 0);
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "acquired") == 0;
  if (!ok) fail("hold (thread %d, message %s): %s", w->id, w->msg, PQerrorMessage(w->pg2));
  PQclear(r);
  if (!ok || !run_expect(w, "dedup_begin", 1, p, "acquired") || !run_expect(w, "dedup_complete", 1, p, ""))
    return 0;
  r = PQexecPrepared(w->pg2, "fenced", 1, p, NULL, NULL, 0);
  const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  ok = PQresultStatus(r) == PGRES_FATAL_ERROR && state && strcmp(state, "55000") == 0;
  if (!ok) fail("fenced completion (thread %d, message %s): expected 55000, got %s", w->id, w->msg, state ? state : "ok");
  PQclear(r);
  return ok;
}

/* The resender's bookkeeping: one pending reply locked (pending_replies,
 * SKIP LOCKED: concurrent workers get disjoint rows) and marked sent, in one
 * autocommit statement. One op = one reply. The replies are those the
 * agentcache modes run before left unsent; a worker that finds none left
 * stops (its time until then counts). */
static int op_outbox(struct worker *w) {
  PGresult *r = run(w, "resend", 0, NULL, 1);
  if (!r) return 0;
  int n = atoi(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (n == 0 && w->n_ops == 0) fail("outbox (thread %d): no pending reply (run an agentcache mode first)", w->id);
  return n > 0;
}

static int op_dedup(struct worker *w) {
  const char *p[1] = {w->msg};
  return run_expect(w, "dedup_begin", 1, p, "acquired") && run_expect(w, "dedup_complete", 1, p, "");
}

static int op_dedup_plain(struct worker *w) {
  const char *p[1] = {w->msg};
  PGresult *r;
  if (!run_expect(w, "lock", 1, p, "t") || !run_expect(w, "dedup_insert", 1, p, "1")) return 0;
  if (!(r = run(w, "dedup_done", 1, p, -2))) return 0;
  int updated = strcmp(PQcmdTuples(r), "1") == 0;
  PQclear(r);
  if (!updated) {
    fail("dedup_done (thread %d, message %s): no row updated", w->id, w->msg);
    return 0;
  }
  return run_expect(w, "unlock", 1, p, "t");
}

static int one_op(struct worker *w) {
  switch (g_mode) {
  case M_AGENTCACHE:
  case M_AGENTCACHE_NOLEASE: return op_agentcache(w);
  case M_TAKEOVER: return op_takeover(w);
  case M_OUTBOX: return op_outbox(w);
  case M_PLAINSQL: return op_plainsql_in(w) && op_plainsql_out(w);
  case M_REDIS: return op_redis(w, 0, 0);
  case M_REDIS_PIPELINED: return op_redis(w, 1, 0);
  case M_REDIS_PG_FULL: return op_redis(w, 1, 1);
  case M_DEDUP: return op_dedup(w);
  case M_DEDUP_PLAIN: return op_dedup_plain(w);
  case M_PREWARM_REDIS: break;
  }
  return 0;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  int ready = 1;
  w->pg = PQconnectdb(g_conninfo);
  if (PQstatus(w->pg) != CONNECTION_OK) {
    fail("connect (thread %d): %s", w->id, PQerrorMessage(w->pg));
    ready = 0;
  }
  if (ready && (g_mode == M_REDIS || g_mode == M_REDIS_PIPELINED || g_mode == M_REDIS_PG_FULL) &&
      !(w->rc = redis_connect()))
    ready = 0;
  if (ready && g_mode == M_TAKEOVER) {
    w->pg2 = PQconnectdb(g_conninfo);
    if (PQstatus(w->pg2) != CONNECTION_OK) {
      fail("connect (thread %d, holder): %s", w->id, PQerrorMessage(w->pg2));
      ready = 0;
    }
  }
  if (ready) ready = setup(w);
  pthread_barrier_wait(&g_barrier); /* main sets the deadline before it joins */
  pthread_barrier_wait(&g_barrier);
  while (ready && !g_failed) {
    pick(w);
    double t = now_s();
    if (t >= g_deadline) break;
    if (!one_op(w)) break;
    double d = now_s() - t;
    if (w->n_ops == w->cap) {
      w->cap = w->cap ? 2 * w->cap : 65536;
      w->lat = realloc(w->lat, (size_t)w->cap * sizeof *w->lat);
      if (!w->lat) {
        fail("out of memory");
        break;
      }
    }
    w->lat[w->n_ops++] = d;
  }
  w->end = now_s();
  if (w->rc) redisFree(w->rc);
  if (w->pg2) PQfinish(w->pg2);
  PQfinish(w->pg);
  return NULL;
}

/* ---------------------------------------------------------------- prewarm_redis */

/* SET route:<instance> <record> for every instance, RPUSH ctx:<session> the
 * newest CONTEXT_TURNS turns of every session (oldest first), from the
 * tables the plain-SQL mode reads. Prints "PREWARMED routes=N contexts=M turns=K". */
static int prewarm_redis(void) {
  struct worker w = {0};
  w.pg = PQconnectdb(g_conninfo);
  if (PQstatus(w.pg) != CONNECTION_OK) {
    fail("connect: %s", PQerrorMessage(w.pg));
    return 1;
  }
  if (!(w.rc = redis_connect())) return 1;
  long routes = 0, turns = 0, pending = 0;
  const char *sql = "SELECT 'route:' || i.instance, jsonb_build_object('clinic_id', c.id, 'name', c.name, "
                    "'timezone', c.timezone, 'phone', c.phone, 'settings', c.settings, 'provider', i.provider)::text "
                    "FROM public.integrations i JOIN public.clinics c ON c.id = i.clinic_id WHERE i.active";
  const char *queries[2] = {sql, NULL};
  char ctx_sql[1024];
  snprintf(ctx_sql, sizeof ctx_sql,
           "SELECT 'ctx:' || session_id, jsonb_build_object('seq', seq, 'role', role, 'content', content, 'at', "
           "created_at)::text FROM (SELECT *, row_number() OVER (PARTITION BY session_id ORDER BY seq DESC) AS rn "
           "FROM public.app_turns) t WHERE rn <= %d ORDER BY session_id, seq", g_turns);
  queries[1] = ctx_sql;
  for (int q = 0; q < 2; q++) {
    if (!PQsendQuery(w.pg, queries[q]) || !PQsetSingleRowMode(w.pg)) {
      fail("prewarm query: %s", PQerrorMessage(w.pg));
      return 1;
    }
    PGresult *r;
    while ((r = PQgetResult(w.pg))) {
      ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_SINGLE_TUPLE) {
        const char *argv[3] = {q == 0 ? "SET" : "RPUSH", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1)};
        redisAppendCommandArgv(w.rc, 3, argv, NULL);
        pending++;
        if (q == 0) routes++; else turns++;
        if (pending == 1000) /* keep at most 1000 commands in flight */
          for (; pending > 0; pending--)
            if (!redis_get_reply(&w, q == 0 ? REDIS_REPLY_STATUS : REDIS_REPLY_INTEGER, "prewarm")) return 1;
      } else if (st != PGRES_TUPLES_OK) {
        fail("prewarm query: %s", PQerrorMessage(w.pg));
        return 1;
      }
      PQclear(r);
    }
    for (; pending > 0; pending--)
      if (!redis_get_reply(&w, q == 0 ? REDIS_REPLY_STATUS : REDIS_REPLY_INTEGER, "prewarm")) return 1;
  }
  redisReply *rep = redisCommand(w.rc, "DBSIZE");
  long keys = rep && rep->type == REDIS_REPLY_INTEGER ? (long)rep->integer : -1;
  if (rep) freeReplyObject(rep);
  printf("PREWARMED routes=%ld turns=%ld redis_keys=%ld\n", routes, turns, keys);
  redisFree(w.rc);
  PQfinish(w.pg);
  return 0;
}

/* ---------------------------------------------------------------- main */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* nearest-rank percentile of sorted v[0..n) */
static double pct(const double *v, long n, double p) {
  long k = (long)ceil(p * (double)n);
  if (k < 1) k = 1;
  return v[k - 1];
}

static void usage(void) {
  fprintf(stderr, "usage: hotpath_client -m MODE -c CONNS -T SECONDS -d CONNINFO [-r REDIS] [-s SESSIONS] "
                  "[-i INSTANCES] [-t CONTEXT_TURNS] [-p PREFIX]\n"
                  "MODE: agentcache agentcache_nolease plainsql redis redis_pipelined redis_pg_full dedup dedup_plain takeover "
                  "outbox prewarm_redis\n");
  exit(2);
}

int main(int argc, char **argv) {
  int opt, have_mode = 0;
  while ((opt = getopt(argc, argv, "m:c:T:d:r:s:i:t:p:")) != -1) {
    switch (opt) {
    case 'm':
      for (size_t k = 0; k < sizeof MODE_NAMES / sizeof *MODE_NAMES; k++)
        if (strcmp(optarg, MODE_NAMES[k]) == 0) g_mode = (enum mode)k, have_mode = 1;
      if (!have_mode) usage();
      break;
    case 'c': g_conns = atoi(optarg); break;
    case 'T': g_seconds = atoi(optarg); break;
    case 'd': g_conninfo = optarg; break;
    case 'r': g_redis = optarg; break;
    case 's': g_sessions = atoi(optarg); break;
    case 'i': g_instances = atoi(optarg); break;
    case 't': g_turns = atoi(optarg); break;
    case 'p': g_prefix = optarg; break;
    default: usage();
    }
  }
  if (!have_mode || !g_conninfo || g_conns < 1 || g_seconds < 1 || g_instances < 1 || g_turns < 1 ||
      g_sessions < g_conns)
    usage();
  if ((g_mode == M_REDIS || g_mode == M_REDIS_PIPELINED || g_mode == M_REDIS_PG_FULL || g_mode == M_PREWARM_REDIS) &&
      !g_redis)
    usage();
  if (g_mode == M_PREWARM_REDIS) return prewarm_redis() || g_failed;

  struct worker *ws = calloc((size_t)g_conns, sizeof *ws);
  pthread_t *th = calloc((size_t)g_conns, sizeof *th);
  if (!ws || !th) return 1;
  pthread_barrier_init(&g_barrier, NULL, (unsigned)g_conns + 1);
  for (int i = 0; i < g_conns; i++) {
    ws[i].id = i;
    ws[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^ (uint64_t)time(NULL);
    if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0) {
      fprintf(stderr, "hotpath_client: pthread_create failed\n");
      return 1;
    }
  }
  pthread_barrier_wait(&g_barrier); /* every thread connected and prepared */
  g_t0 = now_s();
  g_deadline = g_t0 + g_seconds;
  pthread_barrier_wait(&g_barrier);
  long total = 0;
  double end = g_t0;
  for (int i = 0; i < g_conns; i++) {
    pthread_join(th[i], NULL);
    total += ws[i].n_ops;
    if (ws[i].end > end) end = ws[i].end;
  }
  if (g_failed) return 1;
  if (total == 0) {
    fprintf(stderr, "hotpath_client: no operation completed\n");
    return 1;
  }
  double *all = malloc((size_t)total * sizeof *all);
  if (!all) return 1;
  long k = 0;
  for (int i = 0; i < g_conns; i++) {
    memcpy(all + k, ws[i].lat, (size_t)ws[i].n_ops * sizeof *all);
    k += ws[i].n_ops;
  }
  qsort(all, (size_t)total, sizeof *all, cmp_double);
  double secs = end - g_t0;
  printf("RESULT mode=%s conns=%d ops=%ld secs=%.3f ops_per_s=%.1f p50_ms=%.3f p99_ms=%.3f\n", MODE_NAMES[g_mode],
         g_conns, total, secs, (double)total / secs, 1000 * pct(all, total, 0.50), 1000 * pct(all, total, 0.99));
  return 0;
}
