// The error boundary (see boundary.hpp) and its self-test entry point.
#include "pg/boundary.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace agentcache::pg {

namespace {
void copy_str(char* dst, std::size_t cap, const char* src) noexcept {
  if (src == nullptr) {
    dst[0] = '\0';
    return;
  }
  std::size_t n = std::strlen(src);
  if (n >= cap) n = cap - 1;
  std::memcpy(dst, src, n);
  dst[n] = '\0';
}
}  // namespace

sql_error::sql_error(int sqlstate, const char* msg, const char* detail, const char* hint) noexcept
    : sqlstate_(sqlstate) {
  copy_str(msg_, sizeof msg_, msg);
  copy_str(detail_, sizeof detail_, detail);
  copy_str(hint_, sizeof hint_, hint);
}

void capture_current_exception(CaughtError& out) noexcept {
  try {
    throw;
  } catch (const pg_error& e) {
    out.edata = e.edata();
  } catch (const sql_error& e) {
    out.sqlstate = e.sqlstate();
    copy_str(out.msg, sizeof out.msg, e.what());
    copy_str(out.detail, sizeof out.detail, e.detail());
    copy_str(out.hint, sizeof out.hint, e.hint());
  } catch (const std::bad_alloc&) {
    out.sqlstate = ERRCODE_OUT_OF_MEMORY;
    copy_str(out.msg, sizeof out.msg, "out of memory in agentcache");
  } catch (const std::exception& e) {
    out.sqlstate = ERRCODE_INTERNAL_ERROR;
    copy_str(out.msg, sizeof out.msg, "C++ exception: ");
    std::size_t n = std::strlen(out.msg);
    copy_str(out.msg + n, sizeof out.msg - n, e.what());
  } catch (...) {
    out.sqlstate = ERRCODE_INTERNAL_ERROR;
    copy_str(out.msg, sizeof out.msg, "unknown C++ exception");
  }
}

void raise_caught(const CaughtError& c) {
  if (c.edata != nullptr) ReThrowError(c.edata);
  ereport(ERROR, (errcode(c.sqlstate), errmsg_internal("%s", c.msg),
                  c.detail[0] ? errdetail_internal("%s", c.detail) : 0,
                  c.hint[0] ? errhint("%s", c.hint) : 0));
  pg_unreachable();
}

}  // namespace agentcache::pg

// ---------------------------------------------------------------------------
// agentcache._boundary_selftest(kind text) RETURNS bigint
//
// Exercises both directions of the boundary so that regression tests can
// prove the backend stays healthy. Returns the number of C++ destructors that
// have run in this backend for probes created by the self test: each call
// that unwinds must add exactly one.
//   'ok'          no error; returns the counter
//   'cxx'         throws std::runtime_error with a live probe -> ERROR XX000
//   'bad_alloc'   throws std::bad_alloc -> ERROR 53200
//   'sql'         throws sql_error(22023) -> ERROR 22023
//   'pg'          calls int4div(1, 0) through pg_try with a probe and a
//                 std::string alive -> ERROR 22012, probe destroyed
//   'cxx_lwlock'  throws while an LWLockGuard holds the self-test lock
//   'lwlock'      1 if the self-test lock is free (nothing leaked it), else 0
namespace {
long g_probe_dtors = 0;
struct Probe {
  ~Probe() { ++g_probe_dtors; }
};
}  // namespace

namespace agentcache::shmem {
LWLock* selftest_lock() noexcept;
}
using agentcache::shmem::selftest_lock;

AGENTCACHE_FUNCTION(agentcache_boundary_selftest) {
  using namespace agentcache::pg;
  return boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) throw sql_error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "kind must not be null");
    std::string kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
    if (kind == "ok") return Int64GetDatum(g_probe_dtors);
    if (kind == "cxx") {
      Probe p;
      throw std::runtime_error("boom from C++ (" + kind + ")");
    }
    if (kind == "bad_alloc") {
      Probe p;
      throw std::bad_alloc();
    }
    if (kind == "sql") {
      Probe p;
      throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "selftest sql_error", "some detail", "some hint");
    }
    if (kind == "pg") {
      Probe p;
      std::string alive(100, 'x');
      Datum r = 0;
      pg_try([&] { r = DirectFunctionCall2(int4div, Int32GetDatum(1), Int32GetDatum(0)); });
      return r;
    }
    if (kind == "cxx_lwlock") {
      // a C++ exception while an LWLock is held: the guard's destructor releases it
      LWLock* lock = selftest_lock();
      if (lock == nullptr)
        throw sql_error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "agentcache must be loaded via shared_preload_libraries");
      Probe p;
      LWLockGuard g(lock, LW_EXCLUSIVE);
      throw std::runtime_error("thrown while holding an LWLock");
    }
    if (kind == "lwlock") {
      // 1 when the self-test lock is free (not leaked by an earlier error), else 0
      LWLock* lock = selftest_lock();
      if (lock == nullptr)
        throw sql_error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "agentcache must be loaded via shared_preload_libraries");
      if (LWLockHeldByMe(lock) || !LWLockConditionalAcquire(lock, LW_EXCLUSIVE)) return Int64GetDatum(0);
      LWLockRelease(lock);
      return Int64GetDatum(1);
    }
    throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown self-test kind");
  });
}
