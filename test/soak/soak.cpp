// agentcache chaos soak: every tier's operations from many connections while a
// chaos thread does what production does, with invariants checked during and
// after the run against a log the driver keeps. test/soak/run.sh builds and
// runs it against a throwaway cluster; see test/soak/README.md.
//
//   soak -d CONNINFO -T SECONDS -b BASELINE [-s SEED] [-k KILL9_EVERY_S] [-v]
//
// BASELINE: health()'s session_memory.used || '/' || map_memory.used right
// after CREATE EXTENSION in a fresh cluster (run.sh reads it).
//
// CONNINFO names a database where agentcache is installed and the setup of
// run.sh was done (roles soak_app, soak_reader; table soak_src; map soak_map).
// The driver runs as the postgres OS user: the chaos thread kill -9s backends.
//
// Threads (21 connections + chaos):
//   inbound x5   inbound/outbound; dedup_fail; abandoned claims; retries of
//                recent message ids (duplicates, in_progress); two of them with a
//                1 s claim lease and LLM calls past it: takeovers and fencing
//   memory  x4   add_turn/get_context on 8 shared sessions, and (a second
//                connection each) an application's SQL INSERT of a turn
//   ttl     x4   put/get/fetch/invalidate/invalidate_tag/clear on 2 namespaces
//                x 100 keys (one with max_entries)
//   lookup  x2   lookup of several keys of soak_map in one statement
//   maps    x1   a new version of soak_src, refresh_map, now and then define_map
//   chaos   x1   ANALYZE/VACUUM, GRANT/REVOKE, CREATE INDEX CONCURRENTLY + cancel,
//                sweep_interval reloads, pg_terminate_backend of clients and of
//                the worker, statement cancels, kill -9 of a backend
//
// Invariants (a violation is counted and printed; the exit status is 1 when
// there is any):
//   * every error has a SQLSTATE the operation documents or the chaos explains
//     (cancel 57014 by user request, termination 57P01/57P02/57P03, a lost
//     connection; 42704 from lookup shortly after a crash or worker restart) —
//     never XX000, never 40P01, never a statement_timeout (a hang);
//   * dedup: at most one holder per message at any moment (the intervals in
//     which each holder surely held it never overlap; a claim with a lease is
//     surely held only until its lease ran out, unless its completion then
//     succeeded), a completion after the lease may only be fenced (55000), and no message
//     completed before a dedup_begin was sent is acquired again (window 1 h);
//   * memory: get_context's seqs increase, each turn's content is the one
//     acknowledged for that seq, and every turn acknowledged before the call
//     within the window returned is there; add_turn's seq is above every seq
//     of the session acknowledged before the call (turns by add_turn and by
//     an application's SQL INSERT with a gap);
//   * ttl (checked after the run, over the whole log): no get/fetch returns a
//     value older than a put, fetch store, invalidate, invalidate_tag or clear
//     of its key that completed before the call was sent;
//   * maps: each answer is the value of its key in one committed version
//     (never a version whose UPDATE had not been sent), never older than a
//     refresh_map acknowledged before the call, and never older than the same
//     thread saw before;
//   * after the run: get_context equals the table for every session, lookups
//     equal the source, and shared memory used falls back to its baseline
//     after DROP EXTENSION + CREATE EXTENSION.
#include <libpq-fe.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point g_t0 = Clock::now();
int64_t now_us() { return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - g_t0).count(); }

std::string g_conninfo;
int g_seconds = 60;
unsigned g_seed = 1;
bool g_verbose = false;
std::atomic<bool> g_stop{false};

// ------------------------------------------------------------------ violations and counters
std::mutex g_report_mu;
std::vector<std::string> g_violations;
std::map<std::string, long> g_ops;     // "tier op" -> successful calls
std::map<std::string, long> g_errors;  // "op sqlstate" -> allowed errors
std::map<std::string, long> g_chaos;   // event -> count

void violation(const std::string& what) {
  std::lock_guard<std::mutex> g(g_report_mu);
  if (g_violations.size() < 1000) g_violations.push_back(std::to_string(now_us() / 1000) + " ms: " + what);
  std::fprintf(stderr, "VIOLATION: %s\n", what.c_str());
}
void count_op(const std::string& op) {
  std::lock_guard<std::mutex> g(g_report_mu);
  ++g_ops[op];
}
void count_error(const std::string& op, const std::string& state) {
  std::lock_guard<std::mutex> g(g_report_mu);
  ++g_errors[op + " " + state];
}
void count_chaos(const std::string& ev) {
  std::lock_guard<std::mutex> g(g_report_mu);
  ++g_chaos[ev];
}

// Crashes and worker restarts: lookups may miss maps for a while after them.
std::atomic<int64_t> g_last_disruption_us{0};

// ------------------------------------------------------------------ a connection
struct Result {
  bool ok = false;
  bool lost = false;  // the connection broke
  std::string state, message;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::vector<bool>> nulls;
  int64_t req = 0, resp = 0;
  const std::string& at(int r, int c) const { return rows[r][c]; }
  bool null(int r, int c) const { return nulls[r][c]; }
};

class Conn {
 public:
  explicit Conn(std::string name, std::string role = "") : name_(std::move(name)), role_(std::move(role)) {}
  ~Conn() { close(); }
  // Connects, retrying for up to 90 s (a crash restart takes a few).
  void connect() {
    close();
    const std::string ci = g_conninfo + " application_name=" + name_;
    const int64_t until = now_us() + 90 * 1000000LL;
    while (true) {
      c_ = PQconnectdb(ci.c_str());
      if (PQstatus(c_) == CONNECTION_OK) break;
      PQfinish(c_);
      c_ = nullptr;
      if (now_us() > until) {
        violation(name_ + ": the server did not accept connections for 90 s");
        std::exit(2);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    PQsetNoticeProcessor(c_, [](void*, const char*) {}, nullptr);  // NOTICEs of the chaos are expected
    std::string setup = "SET statement_timeout = '20s'";
    if (!role_.empty()) setup += "; SET ROLE " + role_;
    PGresult* r = PQexec(c_, setup.c_str());
    PQclear(r);
    pid_ = PQbackendPID(c_);
  }
  void close() {
    if (c_ != nullptr) PQfinish(c_);
    c_ = nullptr;
  }
  bool broken() const { return c_ == nullptr || PQstatus(c_) != CONNECTION_OK; }
  int pid() const { return pid_; }
  PGconn* raw() { return c_; }

  Result exec(const char* sql, std::initializer_list<std::string> params = {}) {
    Result res;
    if (broken()) connect();
    std::vector<const char*> values;
    for (const std::string& p : params) values.push_back(p.c_str());
    res.req = now_us();
    PGresult* r = PQexecParams(c_, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
    res.resp = now_us();
    const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      res.ok = true;
      for (int i = 0; i < PQntuples(r); ++i) {
        std::vector<std::string> row;
        std::vector<bool> nl;
        for (int j = 0; j < PQnfields(r); ++j) {
          row.emplace_back(PQgetvalue(r, i, j));
          nl.push_back(PQgetisnull(r, i, j));
        }
        res.rows.push_back(std::move(row));
        res.nulls.push_back(std::move(nl));
      }
    } else {
      const char* s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
      const char* m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
      res.state = s ? s : "";
      res.message = m ? m : PQerrorMessage(c_);
      if (PQstatus(c_) != CONNECTION_OK) res.lost = true;
    }
    if (r) PQclear(r);
    return res;
  }

 private:
  std::string name_, role_;
  PGconn* c_ = nullptr;
  int pid_ = 0;
};

// Whether an error is one the chaos explains; anything else is a violation.
// Returns true when allowed (and counts it).
bool allowed_error(const std::string& op, const Result& r, bool extra_ok = false) {
  const std::string& s = r.state;
  bool ok = extra_ok || r.lost || s.empty() || s == "57P01" || s == "57P02" || s == "57P03" || s.rfind("08", 0) == 0;
  if (s == "57014") ok = r.message.find("statement timeout") == std::string::npos;  // a hang is not allowed
  if (s == "XX000" || s == "40P01") ok = false;
  if (ok) {
    count_error(op, s.empty() ? "connection" : s);
    return true;
  }
  violation(op + ": SQLSTATE " + s + ": " + r.message);
  return false;
}

// "a,b,c" -> {"a", "b", "c"} ("" -> {})
std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(sep, pos);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// ------------------------------------------------------------------ dedup
struct Hold {
  int thread;
  int64_t from, to;  // surely held in [from, to]
};
struct Message {
  std::vector<Hold> holds;
  int64_t completed_at = -1;  // outbound acknowledged
};
std::mutex g_dedup_mu;
std::unordered_map<std::string, Message> g_messages;
std::atomic<long> g_message_counter{0};

void dedup_acquired(const std::string& id, const Result& r) {
  std::lock_guard<std::mutex> g(g_dedup_mu);
  Message& m = g_messages[id];
  if (m.completed_at >= 0 && m.completed_at < r.req)
    violation("dedup: message " + id + " completed at " + std::to_string(m.completed_at) +
              " us was acquired again by a dedup_begin sent at " + std::to_string(r.req));
}

void dedup_held(const std::string& id, int thread, int64_t from, int64_t to) {
  std::lock_guard<std::mutex> g(g_dedup_mu);
  Message& m = g_messages[id];
  for (const Hold& h : m.holds)
    if (h.thread != thread && h.from <= to && from <= h.to)
      violation("dedup: message " + id + " held by threads " + std::to_string(h.thread) + " and " +
                std::to_string(thread) + " at the same time");
  m.holds.push_back(Hold{thread, from, to});
}

void dedup_completed(const std::string& id, int64_t at) {
  std::lock_guard<std::mutex> g(g_dedup_mu);
  Message& m = g_messages[id];
  if (m.completed_at < 0) m.completed_at = at;
}

// Threads 0 and 1 claim with a 1 s lease (agentcache.claim_lease), so their
// abandoned claims are taken over by the others and their late outbounds are
// fenced (55000); the others keep the default 5 min lease (none runs out).
constexpr int64_t kShortLeaseUs = 1000000;
int64_t lease_of(int thread) { return thread < 2 ? kShortLeaseUs : 0; }
// Messages a short-lease holder left stuck (abandoned, or in an LLM call past
// its lease), with the time its lease surely ran out: the other threads
// re-deliver them then, so they are taken over and the stuck holder fenced.
std::mutex g_stuck_mu;
std::vector<std::pair<std::string, int64_t>> g_stuck;
void stuck(const std::string& id, int64_t lease_over) {
  std::lock_guard<std::mutex> g(g_stuck_mu);
  if (g_stuck.size() < 200) g_stuck.emplace_back(id, lease_over);
}
bool take_stuck(std::string* id) {
  std::lock_guard<std::mutex> g(g_stuck_mu);
  const int64_t now = now_us();
  for (auto it = g_stuck.begin(); it != g_stuck.end(); ++it)
    if (it->second < now) {
      *id = it->first;
      g_stuck.erase(it);
      return true;
    }
  return false;
}

void inbound_thread(int t) {
  std::mt19937_64 rng(g_seed * 1000 + t);
  Conn c("soak-inbound-" + std::to_string(t), "soak_app");
  const int64_t lease = lease_of(t);
  auto connect = [&] {
    c.connect();
    if (lease) (void)c.exec("SET agentcache.claim_lease = '1s'", {});
  };
  connect();
  const std::string session = "soak-conv-" + std::to_string(t);
  struct Held {
    std::string id;
    int64_t from;
    int64_t req;  // the acquiring call was sent then: its lease ran out no earlier than req + lease
  };
  std::vector<Held> abandoned;
  int64_t last_ok = 0;
  // a claim is surely held until `until`, or until its lease surely ran out
  auto held_until = [&](int64_t req, int64_t until) { return lease ? std::min(until, req + lease) : until; };
  // a lost connection releases every claim: they were surely held until the
  // last successful call on it (or the end of their lease)
  auto lose_claims = [&](int64_t until) {
    for (const Held& h : abandoned) dedup_held(h.id, t, h.from, std::max(h.from, held_until(h.req, until)));
    abandoned.clear();
  };
  while (!g_stop) {
    if (c.broken()) {
      lose_claims(last_ok);
      connect();
    }
    long n = g_message_counter.fetch_add(1);
    if (rng() % 10 < 3 && n > 50) n -= static_cast<long>(rng() % 50);  // a recent id again
    std::string id = "soak-m-" + std::to_string(n);
    if (!lease && rng() % 10 == 0) (void)take_stuck(&id);  // a stuck message re-delivered after its lease
    Result r = c.exec("SELECT agentcache.inbound('none', $1, $2, $3)->>'dedup'", {id, session, "hello " + id});
    if (!r.ok) {
      if (allowed_error("inbound", r) && r.lost) lose_claims(last_ok);
      continue;
    }
    last_ok = r.resp;
    count_op("dedup inbound");
    const std::string dedup = r.at(0, 0);
    if (dedup != "acquired") {
      count_op("dedup inbound " + dedup);
      continue;
    }
    dedup_acquired(id, r);
    // a claim this connection already held (abandoned earlier) was renewed —
    // or, its lease over, taken over by another thread meanwhile and now
    // taken back: the old hold ends with its lease, a new one starts
    for (auto it = abandoned.begin(); it != abandoned.end(); ++it)
      if (it->id == id) {
        dedup_held(id, t, it->from, std::max(it->from, held_until(it->req, r.resp)));
        abandoned.erase(it);
        break;
      }
    const unsigned what = rng() % 100;
    if (what < 4 && abandoned.size() < 20) {  // the caller crashed: the claim stays with the connection
      abandoned.push_back(Held{id, r.resp, r.req});
      if (lease) stuck(id, r.resp + lease);
      count_op("dedup abandoned");
      continue;
    }
    if (lease && what % 10 == 9) {  // an LLM call past the lease, re-delivered meanwhile
      stuck(id, r.resp + lease);
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    }
    const int64_t release_sent = now_us();
    Result e = what < 12 ? c.exec("SELECT agentcache.dedup_fail($1, 'llm timeout')", {id})
                         : c.exec("SELECT agentcache.outbound($1, $2, $3)", {id, session, "reply to " + id});
    const bool fail = what < 12;
    if (e.ok) {
      last_ok = e.resp;
      // a completion succeeds only while the row names this holder: held until then
      dedup_held(id, t, r.resp, std::max(r.resp, release_sent));
      if (!fail) dedup_completed(id, e.resp);
      count_op(fail ? "dedup dedup_fail" : "dedup outbound");
    } else if (e.state == "55000" && lease && release_sent > r.req + lease) {
      // fenced: the lease ran out and another thread took the message over
      last_ok = e.resp;
      dedup_held(id, t, r.resp, std::max(r.resp, r.req + lease));
      count_op(fail ? "dedup dedup_fail fenced" : "dedup outbound fenced");
    } else {
      allowed_error(fail ? "dedup_fail" : "outbound", e);
      // the claim is still held (the transaction failed) or gone with the connection
      if (e.lost) {
        dedup_held(id, t, r.resp, std::max(r.resp, held_until(r.req, last_ok)));
        lose_claims(last_ok);
      } else {
        abandoned.push_back(Held{id, r.resp, r.req});
      }
    }
    if (abandoned.size() >= 20 && rng() % 5 == 0) {  // the pool recycles the connection
      const int64_t closing = now_us();
      c.close();
      lose_claims(closing);
      count_op("dedup reconnect");
    }
  }
  lose_claims(last_ok);
}

// Of (time, value) pairs appended in time order: the value of the last one
// appended before `t` (0 when none).
long last_before(const std::vector<std::pair<int64_t, long>>& v, int64_t t) {
  auto it =
      std::lower_bound(v.begin(), v.end(), t, [](const std::pair<int64_t, long>& e, int64_t x) { return e.first < x; });
  return it == v.begin() ? 0 : std::prev(it)->second;
}

// ------------------------------------------------------------------ memory
constexpr int kSessions = 8;
std::mutex g_mem_mu;
struct Ack {
  std::string content;
  int64_t at;
};
std::vector<std::map<long, Ack>> g_turns(kSessions);  // session -> seq -> acknowledged turn
// session -> (acknowledged at, the highest seq acknowledged until then), in
// acknowledgement order
std::vector<std::vector<std::pair<int64_t, long>>> g_newest(kSessions);

// Records an acknowledged turn (under g_mem_mu).
void acknowledge(int s, const std::string& sid, long seq, const std::string& content) {
  const int64_t at = now_us();
  auto [it, fresh] = g_turns[s].emplace(seq, Ack{content, at});
  if (!fresh) violation("memory: seq " + std::to_string(seq) + " of " + sid + " acknowledged twice");
  const long newest = g_newest[s].empty() ? seq : std::max(seq, g_newest[s].back().second);
  g_newest[s].emplace_back(at, newest);
}

void memory_thread(int t) {
  std::mt19937_64 rng(g_seed * 2000 + t);
  Conn c("soak-memory-" + std::to_string(t), "soak_app");
  c.connect();
  Conn sql("soak-memory-sql-" + std::to_string(t));  // an application writing turns with SQL
  sql.connect();
  long n = 0;
  while (!g_stop) {
    const int s = static_cast<int>(rng() % kSessions);
    const std::string sid = "soak-s" + std::to_string(s);
    const unsigned what = rng() % 16;
    if (what == 0) {
      // past the newest turn with a gap: add_turn must still answer above it
      // (a duplicate seq with a concurrent add_turn is refused, 23505)
      const std::string content = "q-" + std::to_string(t) + "-" + std::to_string(n++);
      Result r = sql.exec(
          "INSERT INTO agentcache.turns (session_id, seq, role, content) SELECT $1, coalesce(max(t.seq), 0) + 3, "
          "'user', $2 FROM agentcache.turns t WHERE t.session_id = $1 RETURNING seq",
          {sid, content});
      if (!r.ok) {
        allowed_error("SQL insert into agentcache.turns", r, r.state == "23505");
        continue;
      }
      count_op("memory SQL insert");
      std::lock_guard<std::mutex> g(g_mem_mu);
      acknowledge(s, sid, std::stol(r.at(0, 0)), content);
      continue;
    }
    if (what < 8) {
      const std::string content = "c-" + std::to_string(t) + "-" + std::to_string(n++);
      Result r = c.exec("SELECT agentcache.add_turn($1, 'user', $2)", {sid, content});
      if (!r.ok) {
        allowed_error("add_turn", r, r.state == "23505");
        continue;
      }
      count_op("memory add_turn");
      const long seq = std::stol(r.at(0, 0));
      std::lock_guard<std::mutex> g(g_mem_mu);
      const long before = last_before(g_newest[s], r.req);
      if (seq <= before)
        violation("memory: add_turn(" + sid + ") answered seq " + std::to_string(seq) + ", not above seq " +
                  std::to_string(before) + " acknowledged before the call");
      acknowledge(s, sid, seq, content);
      continue;
    }
    Result r = c.exec(
        "SELECT coalesce(string_agg((e->>'seq') || ':' || (e->>'content'), ',' ORDER BY i), '')"
        " FROM jsonb_array_elements(agentcache.get_context($1)) WITH ORDINALITY x(e, i)",
        {sid});
    if (!r.ok) {
      allowed_error("get_context", r);
      continue;
    }
    count_op("memory get_context");
    std::vector<std::pair<long, std::string>> got;
    const std::string& text = r.at(0, 0);
    for (const std::string& item : split(text, ',')) {
      const size_t colon = item.find(':');
      got.emplace_back(std::stol(item.substr(0, colon)), item.substr(colon + 1));
    }
    std::lock_guard<std::mutex> g(g_mem_mu);
    const auto& acked = g_turns[s];
    for (size_t i = 1; i < got.size(); ++i)
      if (got[i].first <= got[i - 1].first) violation("memory: get_context(" + sid + ") seqs out of order: " + text);
    for (const auto& [seq, content] : got) {
      auto it = acked.find(seq);
      if (it != acked.end() && it->second.content != content)
        violation("memory: " + sid + " seq " + std::to_string(seq) + " is '" + content + "', acknowledged as '" +
                  it->second.content + "'");
    }
    const long min_seq = got.empty() ? 0 : got.front().first;
    const long max_seq = got.empty() ? 0 : got.back().first;
    // acknowledged before the call: inside the window returned, and past it
    for (auto it = acked.lower_bound(min_seq); it != acked.end(); ++it) {
      const auto& [seq, ack] = *it;
      if (ack.at >= r.req) continue;  // not acknowledged before the call
      if (seq > max_seq)
        violation("memory: " + sid + " turn " + std::to_string(seq) + " acknowledged before get_context is missing");
      else if (std::none_of(got.begin(), got.end(), [&](auto& p) { return p.first == seq; }))
        violation("memory: " + sid + " turn " + std::to_string(seq) + " missing inside the window returned");
    }
  }
}

// ------------------------------------------------------------------ ttl
constexpr int kKeys = 100;
const char* const kNamespaces[2] = {"soak-a", "soak-b"};  // soak-a has max_entries 50
struct Span {
  int64_t req, resp;
};
struct Origin {
  Span span;
  bool tagged;  // stored by put (with the key's tag); fetch stores untagged
};
struct Read {
  int key;  // ns * kKeys + k
  std::string value;
  int64_t req;
  const char* op;
};
std::mutex g_ttl_mu;
std::unordered_map<std::string, Origin> g_origin;  // value -> the put/fetch that stored it
std::vector<std::vector<Span>> g_key_writes(2 * kKeys);
std::vector<Span> g_tag_inval[4];
std::vector<Span> g_clears[2];
std::vector<Read> g_reads;

void ttl_thread(int t) {
  std::mt19937_64 rng(g_seed * 3000 + t);
  Conn c("soak-ttl-" + std::to_string(t), "soak_app");
  c.connect();
  long n = 0;
  while (!g_stop) {
    const int ns = static_cast<int>(rng() % 2), k = static_cast<int>(rng() % kKeys);
    const int key = ns * kKeys + k;
    const std::string nsname = kNamespaces[ns], kname = "k" + std::to_string(k);
    const std::string tags = "{t" + std::to_string(k % 4) + "}";
    const unsigned what = rng() % 100;
    const std::string value = "w-" + std::to_string(t) + "-" + std::to_string(n++);
    Result r;
    const char* op = "";
    if (what < 35) {
      op = "put";
      r = c.exec("SELECT agentcache.put($1, $2, jsonb_build_object('w', $3::text), '1 hour', $4::text[])",
                 {nsname, kname, value, tags});
      if (r.ok) {
        std::lock_guard<std::mutex> g(g_ttl_mu);
        g_origin[value] = Origin{Span{r.req, r.resp}, true};
        g_key_writes[key].push_back(Span{r.req, r.resp});
      }
    } else if (what < 70) {
      op = "get";
      r = c.exec("SELECT agentcache.get($1, $2)->>'w'", {nsname, kname});
      if (r.ok && !r.null(0, 0)) {
        std::lock_guard<std::mutex> g(g_ttl_mu);
        g_reads.push_back(Read{key, r.at(0, 0), r.req, "get"});
      }
    } else if (what < 85) {
      op = "fetch";
      // the query's value is this call's own: when it comes back, this call stored it
      r = c.exec("SELECT agentcache.fetch($1, $2, $3, '1 hour')->>'w'",
                 {nsname, kname, "SELECT jsonb_build_object('w', '" + value + "'::text)"});
      if (r.ok && !r.null(0, 0)) {
        std::lock_guard<std::mutex> g(g_ttl_mu);
        if (r.at(0, 0) == value) {
          g_origin[value] = Origin{Span{r.req, r.resp}, false};
          g_key_writes[key].push_back(Span{r.req, r.resp});
        } else {
          g_reads.push_back(Read{key, r.at(0, 0), r.req, "fetch"});
        }
      }
    } else if (what < 94) {
      op = "invalidate";
      r = c.exec("SELECT agentcache.invalidate($1, $2)", {nsname, kname});
      if (r.ok) {
        std::lock_guard<std::mutex> g(g_ttl_mu);
        g_key_writes[key].push_back(Span{r.req, r.resp});
      }
    } else if (what < 98) {
      op = "invalidate_tag";
      const int tag = static_cast<int>(rng() % 4);
      r = c.exec("SELECT agentcache.invalidate_tag($1)", {"t" + std::to_string(tag)});
      if (r.ok) {
        std::lock_guard<std::mutex> g(g_ttl_mu);
        g_tag_inval[tag].push_back(Span{r.req, r.resp});
      }
    } else {
      op = "clear";
      r = c.exec("SELECT agentcache.clear($1)", {nsname});
      if (r.ok) {
        std::lock_guard<std::mutex> g(g_ttl_mu);
        g_clears[ns].push_back(Span{r.req, r.resp});
      }
    }
    if (r.ok)
      count_op(std::string("ttl ") + op);
    else
      allowed_error(op, r);
  }
}

// Is there an event that began after `origin` was acknowledged and was
// acknowledged before `before`? (then a value of `origin` is stale at
// `before`). `evs` is sorted by acknowledgement.
bool superseded(const std::vector<Span>& evs, const Span& origin, int64_t before) {
  auto end = std::lower_bound(evs.begin(), evs.end(), before, [](const Span& e, int64_t t) { return e.resp < t; });
  for (auto it = end; it != evs.begin();) {
    --it;
    if (it->resp <= origin.resp) break;  // earlier ones began before origin was acknowledged
    if (it->req > origin.resp) return true;
  }
  return false;
}

void check_ttl_log() {
  std::lock_guard<std::mutex> g(g_ttl_mu);
  const auto by_resp = [](const Span& a, const Span& b) { return a.resp < b.resp; };
  for (auto& v : g_key_writes) std::sort(v.begin(), v.end(), by_resp);
  for (auto& v : g_tag_inval) std::sort(v.begin(), v.end(), by_resp);
  for (auto& v : g_clears) std::sort(v.begin(), v.end(), by_resp);
  long checked = 0;
  for (const Read& r : g_reads) {
    auto it = g_origin.find(r.value);
    if (it == g_origin.end()) {
      violation(std::string("ttl: ") + r.op + " returned '" + r.value + "', which no acknowledged put or fetch stored");
      continue;
    }
    const int ns = r.key / kKeys, k = r.key % kKeys;
    const Origin& o = it->second;
    if (superseded(g_key_writes[r.key], o.span, r.req) || (o.tagged && superseded(g_tag_inval[k % 4], o.span, r.req)) ||
        superseded(g_clears[ns], o.span, r.req))
      violation(std::string("ttl: ") + r.op + " of " + kNamespaces[ns] + "/k" + std::to_string(k) + " returned '" +
                r.value + "', older than a write or invalidation completed before the call");
    ++checked;
  }
  std::printf("ttl: %ld reads checked against %zu stored values\n", checked, g_origin.size());
}

// ------------------------------------------------------------------ maps
constexpr int kMapKeys = 200;
std::mutex g_map_mu;
// Both appended in time order by the one maps thread.
std::vector<std::pair<int64_t, long>> g_version_sent;  // (its UPDATE sent at, version)
std::vector<std::pair<int64_t, long>> g_refreshed;     // (refresh_map acknowledged at, version at least)

void maps_thread() {
  std::mt19937_64 rng(g_seed * 4000);
  Conn c("soak-maps");
  c.connect();
  long version = 1;  // run.sh loaded version 1
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 200));
    const long v = version + 1;
    {
      std::lock_guard<std::mutex> g(g_map_mu);
      g_version_sent.emplace_back(now_us(), v);
    }
    Result r = c.exec("UPDATE soak_src SET ver = $1::int", {std::to_string(v)});
    if (!r.ok) {
      allowed_error("update source", r);
      continue;
    }
    version = v;
    count_op("maps new version");
    const unsigned what = rng() % 10;
    if (what < 6) {
      Result f = c.exec("SELECT agentcache.refresh_map('soak_map')");
      if (f.ok) {
        std::lock_guard<std::mutex> g(g_map_mu);
        g_refreshed.emplace_back(f.resp, v);
        count_op("maps refresh_map");
      } else {
        allowed_error("refresh_map", f);
      }
    } else if (what == 6) {
      Result f = c.exec(
          "SELECT agentcache.define_map('soak_map', 'SELECT k, jsonb_build_object(''k'', k, ''ver'', ver) FROM "
          "public.soak_src', '1 second')");
      if (f.ok) {
        std::lock_guard<std::mutex> g(g_map_mu);
        g_refreshed.emplace_back(f.resp, v);
        count_op("maps define_map");
      } else {
        allowed_error("define_map", f);
      }
    }
  }
}

void lookup_thread(int t) {
  std::mt19937_64 rng(g_seed * 5000 + t);
  Conn c("soak-lookup-" + std::to_string(t), "soak_app");
  c.connect();
  long seen = 0;
  while (!g_stop) {
    std::string keys = "{";
    for (int i = 0; i < 5; ++i) keys += (i ? ",k" : "k") + std::to_string(rng() % kMapKeys);
    keys += "}";
    Result r = c.exec(
        "SELECT string_agg(coalesce(v->>'k', 'null') || ':' || coalesce(v->>'ver', 'null') || ':' || key, ',' ORDER BY "
        "i) FROM unnest($1::text[]) WITH ORDINALITY u(key, i), LATERAL (SELECT agentcache.lookup('soak_map', key) v) l",
        {keys});
    if (!r.ok) {
      const bool shortly_after = r.resp - g_last_disruption_us.load() < 15 * 1000000LL;
      allowed_error("lookup", r, r.state == "42704" && shortly_after);
      continue;
    }
    count_op("maps lookup");
    long max_sent = 0, min_refreshed = 0;
    {
      std::lock_guard<std::mutex> g(g_map_mu);
      max_sent = last_before(g_version_sent, r.resp);
      min_refreshed = last_before(g_refreshed, r.req);
    }
    max_sent = std::max(max_sent, 1L);
    for (const std::string& item : split(r.at(0, 0), ',')) {
      const std::vector<std::string> f = split(item, ':');  // answered key : version : asked key
      const std::string& k = f[0];
      const std::string& ver = f[1];
      const std::string& asked = f[2];
      if (k != asked || ver == "null") {
        violation("maps: lookup of " + asked + " answered " + item);
        continue;
      }
      const long v = std::stol(ver);
      if (v > max_sent) violation("maps: lookup answered version " + ver + " before its UPDATE was sent");
      if (v < min_refreshed)
        violation("maps: lookup answered version " + ver + " after refresh_map of version " +
                  std::to_string(min_refreshed) + " was acknowledged");
      if (v < seen) violation("maps: lookup went back from version " + std::to_string(seen) + " to " + ver);
      seen = std::max(seen, v);
    }
  }
}

// ------------------------------------------------------------------ chaos
std::vector<int> client_pids(Conn& admin, const char* like) {
  std::vector<int> pids;
  Result r = admin.exec("SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1", {like});
  if (r.ok)
    for (auto& row : r.rows) pids.push_back(std::stoi(row[0]));
  return pids;
}

void chaos_thread(int kill9_every_s) {
  std::mt19937_64 rng(g_seed * 6000);
  Conn admin("soak-chaos");
  admin.connect();
  Conn cic("soak-chaos-cic");
  int64_t next_kill9 = (kill9_every_s / 2) * 1000000LL;
  const char* const tables[] = {"agentcache.turns", "agentcache.entries", "agentcache.dedup", "agentcache.namespaces",
                                "agentcache.maps"};
  const char* const intervals[] = {"200ms", "1s", "3s", "30s"};
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 600));
    if (g_stop) break;
    if (admin.broken()) admin.connect();
    if (kill9_every_s > 0 && now_us() >= next_kill9) {
      next_kill9 = now_us() + kill9_every_s * 1000000LL;
      std::vector<int> pids = client_pids(admin, "soak-%");
      if (!pids.empty()) {
        const int pid = pids[rng() % pids.size()];
        g_last_disruption_us = now_us();
        if (::kill(pid, SIGKILL) == 0) count_chaos("kill -9 of a backend (crash and recovery)");
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        admin.connect();  // waits for the restart
        g_last_disruption_us = now_us();
      }
      continue;
    }
    const unsigned what = rng() % 100;
    std::string ev;
    Result r;
    if (what < 20) {
      const char* t = tables[rng() % 5];
      r = admin.exec((std::string("ANALYZE ") + t).c_str());
      ev = "ANALYZE";
    } else if (what < 30) {
      const char* t = tables[rng() % 5];
      r = admin.exec((std::string("VACUUM ") + t).c_str());
      ev = "VACUUM";
    } else if (what < 45) {
      r = admin.exec(rng() % 2 ? "GRANT SELECT ON agentcache.entries, agentcache.turns TO soak_reader"
                               : "REVOKE SELECT ON agentcache.entries, agentcache.turns FROM soak_reader");
      ev = "GRANT/REVOKE";
    } else if (what < 53) {
      // CREATE INDEX CONCURRENTLY, cancelled after a moment (or left to
      // finish), then dropped
      if (cic.broken()) cic.connect();
      const bool turns = rng() % 2;
      const std::string sql = turns ? "CREATE INDEX CONCURRENTLY soak_cic ON agentcache.turns (content)"
                                    : "CREATE INDEX CONCURRENTLY soak_cic ON agentcache.entries (stored_at)";
      if (PQsendQuery(cic.raw(), sql.c_str())) {
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
        bool cancelled = false;
        if (rng() % 3 != 0) {
          PGcancel* pc = PQgetCancel(cic.raw());
          char buf[256];
          cancelled = pc && PQcancel(pc, buf, sizeof buf);
          if (pc) PQfreeCancel(pc);
        }
        while (PGresult* pr = PQgetResult(cic.raw())) PQclear(pr);
        count_chaos(cancelled ? "CREATE INDEX CONCURRENTLY, cancelled" : "CREATE INDEX CONCURRENTLY");
      }
      r = admin.exec("DROP INDEX IF EXISTS agentcache.soak_cic");
      ev = "DROP INDEX";
    } else if (what < 63) {
      const std::string iv = intervals[rng() % 4];
      r = admin.exec(("ALTER SYSTEM SET agentcache.sweep_interval = '" + iv + "'").c_str());
      if (r.ok) r = admin.exec("SELECT pg_reload_conf()");
      ev = "reload (sweep_interval)";
    } else if (what < 75) {
      std::vector<int> pids = client_pids(admin, "soak-%");
      pids.erase(std::remove_if(pids.begin(), pids.end(), [&](int p) { return p == admin.pid(); }), pids.end());
      if (pids.empty()) continue;
      r = admin.exec("SELECT pg_terminate_backend($1::int)", {std::to_string(pids[rng() % pids.size()])});
      ev = "pg_terminate_backend of a client";
    } else if (what < 80) {
      r = admin.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'agentcache worker'");
      g_last_disruption_us = now_us();
      ev = "pg_terminate_backend of the worker";
    } else {
      std::vector<int> pids = client_pids(admin, "soak-%");
      if (pids.empty()) continue;
      r = admin.exec("SELECT pg_cancel_backend($1::int)", {std::to_string(pids[rng() % pids.size()])});
      ev = "statement cancel";
    }
    if (r.ok)
      count_chaos(ev);
    else if (allowed_error("chaos " + ev, r))
      count_chaos(ev + " (interrupted)");
  }
}

// ------------------------------------------------------------------ after the run
std::string scalar(Conn& c, const char* sql) {
  Result r = c.exec(sql);
  if (!r.ok || r.rows.empty()) {
    violation(std::string("after the run: ") + sql + ": " + r.state + " " + r.message);
    return "";
  }
  return r.null(0, 0) ? "" : r.at(0, 0);
}

void final_checks(const std::string& baseline) {
  Conn c("soak-final");
  c.connect();
  // the worker is back and has loaded the map after the last disruption
  for (int i = 0; i < 150 && scalar(c, "SELECT (agentcache.health()->'worker'->>'alive')") != "true"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (scalar(c,
             "SELECT count(*) FROM (SELECT DISTINCT session_id FROM agentcache.turns) s"
             " WHERE agentcache.get_context(session_id, 50) IS DISTINCT FROM"
             " (SELECT coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content, 'at',"
             " to_jsonb(created_at)) || CASE WHEN meta IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('meta', meta)"
             " END ORDER BY seq), '[]') FROM (SELECT * FROM agentcache.turns t WHERE t.session_id = s.session_id"
             " ORDER BY seq DESC LIMIT 50) x)") != "0")
    violation("after the run: get_context differs from agentcache.turns");
  scalar(c, "SELECT agentcache.refresh_map('soak_map')");
  if (scalar(c,
             "SELECT count(*) FROM soak_src WHERE agentcache.lookup('soak_map', k) IS DISTINCT FROM"
             " jsonb_build_object('k', k, 'ver', ver)") != "0")
    violation("after the run: lookups differ from the source");
  scalar(c, "SELECT agentcache.stats() IS NOT NULL");
  const std::string used_sql =
      "SELECT (h->'session_memory'->>'used') || '/' || (h->'map_memory'->>'used') FROM agentcache.health() h";
  const std::string during = scalar(c, used_sql.c_str());
  for (const char* sql : {"DROP EXTENSION agentcache CASCADE", "CREATE EXTENSION agentcache"}) {
    Result r = c.exec(sql);
    if (!r.ok) violation(std::string("after the run: ") + sql + ": " + r.state + " " + r.message);
  }
  const std::string after = scalar(c, used_sql.c_str());
  std::printf("shared memory used (sessions/maps): baseline %s, at the end %s, after DROP/CREATE EXTENSION %s\n",
              baseline.c_str(), during.c_str(), after.c_str());
  if (after != baseline) violation("shared memory used " + after + " after DROP/CREATE EXTENSION, baseline " + baseline);
}

}  // namespace

int main(int argc, char** argv) {
  int opt;
  int kill9_every_s = 40;
  std::string baseline;  // shared memory used right after CREATE EXTENSION (run.sh)
  while ((opt = getopt(argc, argv, "d:T:s:k:b:v")) != -1) {
    switch (opt) {
      case 'd': g_conninfo = optarg; break;
      case 'T': g_seconds = std::atoi(optarg); break;
      case 's': g_seed = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10)); break;
      case 'k': kill9_every_s = std::atoi(optarg); break;
      case 'b': baseline = optarg; break;
      case 'v': g_verbose = true; break;
      default:
        std::fprintf(stderr, "usage: soak -d CONNINFO -T SECONDS -b BASELINE [-s SEED] [-k KILL9_EVERY_S] [-v]\n");
        return 2;
    }
  }
  std::printf("soak: %d s, seed %u, kill -9 every %d s\n", g_seconds, g_seed, kill9_every_s);
  if (baseline.empty()) {
    std::fprintf(stderr, "soak: -b BASELINE (health() session_memory/map_memory used after CREATE EXTENSION) is needed\n");
    return 2;
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i) threads.emplace_back(inbound_thread, i);
  for (int i = 0; i < 4; ++i) threads.emplace_back(memory_thread, i);
  for (int i = 0; i < 4; ++i) threads.emplace_back(ttl_thread, i);
  for (int i = 0; i < 2; ++i) threads.emplace_back(lookup_thread, i);
  threads.emplace_back(maps_thread);
  threads.emplace_back(chaos_thread, kill9_every_s);
  for (int s = 0; s < g_seconds; ++s) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (g_verbose && s % 10 == 9) {
      std::lock_guard<std::mutex> g(g_report_mu);
      long ops = 0;
      for (auto& [k, v] : g_ops) ops += v;
      std::printf("  %d s: %ld operations, %zu violations\n", s + 1, ops, g_violations.size());
      std::fflush(stdout);
    }
  }
  g_stop = true;
  for (std::thread& t : threads) t.join();
  check_ttl_log();
  // the hold intervals not yet compared are all closed now; final checks
  final_checks(baseline);

  long total = 0, chaos = 0;
  std::printf("\noperations (successful):\n");
  for (auto& [k, v] : g_ops) {
    std::printf("  %-40s %ld\n", k.c_str(), v);
    if (k.find(" inbound ") == std::string::npos) total += v;
  }
  std::printf("allowed errors (explained by the chaos):\n");
  for (auto& [k, v] : g_errors) std::printf("  %-40s %ld\n", k.c_str(), v);
  std::printf("chaos events:\n");
  for (auto& [k, v] : g_chaos) {
    std::printf("  %-48s %ld\n", k.c_str(), v);
    chaos += v;
  }
  std::printf("violations: %zu\n", g_violations.size());
  for (size_t i = 0; i < g_violations.size() && i < 30; ++i) std::printf("  %s\n", g_violations[i].c_str());
  std::printf("soak: seconds=%d operations=%ld chaos_events=%ld violations=%zu\n", g_seconds, total, chaos,
              g_violations.size());
  return g_violations.empty() ? 0 : 1;
}
