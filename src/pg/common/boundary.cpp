// The error boundary (see boundary.hpp).
#include "pg/common/boundary.hpp"

#include <cstring>

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
                  c.detail[0] ? errdetail_internal("%s", c.detail) : 0, c.hint[0] ? errhint("%s", c.hint) : 0));
  pg_unreachable();
}

}  // namespace agentcache::pg
