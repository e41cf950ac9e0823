// The error boundary between C++ and PostgreSQL — the only one (see
// CONTRIBUTING.md, "Two zones").
//
//  * boundary(f): every SQL-callable function runs its body through it. A C++
//    exception thrown by the body is caught here and turned into
//    ereport(ERROR) only after every C++ frame of the body has unwound, so no
//    exception ever crosses a PostgreSQL frame.
//  * pg_try(f): PostgreSQL calls made while C++ objects with destructors are
//    alive go through it. An ERROR raised inside (a longjmp) is caught by
//    PG_TRY right here, copied, and rethrown as a C++ exception (pg_error),
//    so callers' destructors run; boundary() later re-raises the very same
//    ERROR (SQLSTATE, message, location). The lambda given to pg_try must hold
//    only trivially destructible locals: a longjmp skips its frame.
//  * sql_error: what glue code throws instead of calling ereport while C++
//    objects are alive.
//  * in_subtransaction(f): f through boundary() in an internal
//    subtransaction; its ERROR comes back as data instead of propagating.
//  * LWLockGuard: an LWLock held by RAII; code under it must not call anything
//    that can ereport.
#pragma once
#include "pg/common/pg.hpp"

#include <exception>
#include <new>
#include <utility>

namespace agentcache::pg {

// A PostgreSQL ERROR in flight through C++ frames.
class pg_error final : public std::exception {
 public:
  explicit pg_error(ErrorData* e) noexcept : edata_(e) {}
  const char* what() const noexcept override { return edata_ && edata_->message ? edata_->message : "postgres error"; }
  ErrorData* edata() const noexcept { return edata_; }

 private:
  ErrorData* edata_;  // palloc'd in the caller's memory context by CopyErrorData
};

// An ERROR to raise, built from C++ code.
class sql_error final : public std::exception {
 public:
  sql_error(int sqlstate, const char* msg, const char* detail = nullptr, const char* hint = nullptr) noexcept;
  const char* what() const noexcept override { return msg_; }
  int sqlstate() const noexcept { return sqlstate_; }
  const char* detail() const noexcept { return detail_[0] ? detail_ : nullptr; }
  const char* hint() const noexcept { return hint_[0] ? hint_ : nullptr; }

 private:
  int sqlstate_;
  char msg_[512];
  char detail_[512];
  char hint_[256];
};

// What boundary() caught; raised by raise_caught() outside any catch block.
struct CaughtError {
  ErrorData* edata = nullptr;
  int sqlstate = 0;
  char msg[512] = {};
  char detail[512] = {};
  char hint[256] = {};
};

void capture_current_exception(CaughtError& out) noexcept;  // call inside catch(...)
[[noreturn]] void raise_caught(const CaughtError& c);

template <class F>
Datum boundary(F&& body) {
  CaughtError caught;
  try {
    return body();
  } catch (...) {
    capture_current_exception(caught);
  }
  // No C++ frame of the body is alive any more: longjmp is safe from here.
  raise_caught(caught);
}

template <class F>
void pg_try(F&& f) {
  MemoryContext oldcxt = CurrentMemoryContext;
  ErrorData* volatile edata = nullptr;
  volatile bool cxx_failed = false;
  std::exception_ptr cxx_exc;
  PG_TRY();
  {
    try {
      f();
    } catch (...) {  // never let a C++ exception unwind through sigsetjmp
      cxx_exc = std::current_exception();
      cxx_failed = true;
    }
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(oldcxt);
    edata = CopyErrorData();
    FlushErrorState();
  }
  PG_END_TRY();
  if (edata != nullptr) throw pg_error(edata);
  if (cxx_failed) std::rethrow_exception(cxx_exc);
}

// Runs f() (through boundary()) in an internal subtransaction. Returns nullptr
// when f completed (the subtransaction is released), else the ERROR it raised,
// copied into the caller's memory context (the subtransaction is rolled
// back). Whatever f must hand back it stores through its captures, allocated
// in a context that outlives the subtransaction.
template <class F>
ErrorData* in_subtransaction(F&& f) {
  MemoryContext cxt = CurrentMemoryContext;
  ResourceOwner owner = CurrentResourceOwner;
  ErrorData* volatile edata = nullptr;
  BeginInternalSubTransaction(nullptr);
  MemoryContextSwitchTo(cxt);
  PG_TRY();
  {
    (void)boundary([&]() -> Datum {
      f();
      return Datum(0);
    });
    ReleaseCurrentSubTransaction();
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(cxt);
    edata = CopyErrorData();
    FlushErrorState();
    RollbackAndReleaseCurrentSubTransaction();
  }
  PG_END_TRY();
  MemoryContextSwitchTo(cxt);
  CurrentResourceOwner = owner;
  return edata;
}

class LWLockGuard {
 public:
  LWLockGuard(LWLock* lock, LWLockMode mode) noexcept : lock_(lock) { LWLockAcquire(lock_, mode); }
  ~LWLockGuard() { release(); }
  void release() noexcept {
    if (lock_ != nullptr) LWLockRelease(lock_);
    lock_ = nullptr;
  }
  LWLockGuard(const LWLockGuard&) = delete;
  LWLockGuard& operator=(const LWLockGuard&) = delete;

 private:
  LWLock* lock_;
};

}  // namespace agentcache::pg

// Declares an SQL-callable C function with C linkage.
#define AGENTCACHE_FUNCTION(name)           \
  extern "C" {                              \
  PGDLLEXPORT Datum name(PG_FUNCTION_ARGS); \
  PG_FUNCTION_INFO_V1(name);                \
  }                                         \
  Datum name(PG_FUNCTION_ARGS)
