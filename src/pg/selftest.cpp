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
#include "pg/selftest.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/shmem.hpp"

#include <stdexcept>
#include <string>

namespace agentcache::selftest {

namespace {
long g_probe_dtors = 0;
struct Probe {
  ~Probe() { ++g_probe_dtors; }
};

LWLock* g_lock = nullptr;  // nullptr when not preloaded

Size region_size() { return sizeof(LWLock*); }
bool attach(void*, bool, LWLockPadded* locks) {
  g_lock = &locks[0].lock;
  return true;
}
LWLock* selftest_lock() noexcept { return g_lock; }
}  // namespace

void init() {
  if (process_shared_preload_libraries_in_progress)
    pg::shmem::add_region(pg::shmem::Region{"agentcache_selftest", region_size, 1, attach});
}

}  // namespace agentcache::selftest

using agentcache::selftest::g_probe_dtors;
using agentcache::selftest::Probe;
using agentcache::selftest::selftest_lock;

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
