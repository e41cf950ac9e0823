// Acting as another role: the one helper for SetUserIdAndSecContext.
//
// The previous user and security context come back when f returns. If f
// raises (an ERROR or a C++ exception that becomes one at the boundary), the
// (sub)transaction's abort restores them, as it does for PostgreSQL's own
// SECURITY DEFINER calls; f must not swallow its errors.
#pragma once
#include "pg/common/pg.hpp"

#include <type_traits>

namespace agentcache::pg {

// The extension's owner (owner of schema agentcache): the catalogs app roles
// may not touch (agentcache.maps, agentcache.namespaces) are written as it.
Oid extension_owner();

// f() as `role`, with `sec_flags` added to the security context
// (SECURITY_LOCAL_USERID_CHANGE is always added).
template <class F>
auto as_role(Oid role, int sec_flags, F&& f) -> decltype(f()) {
  Oid save_user;
  int save_sec;
  GetUserIdAndSecContext(&save_user, &save_sec);
  SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE | sec_flags);
  if constexpr (std::is_void_v<decltype(f())>) {
    f();
    SetUserIdAndSecContext(save_user, save_sec);
  } else {
    auto r = f();
    SetUserIdAndSecContext(save_user, save_sec);
    return r;
  }
}

// f() as the extension's owner.
template <class F>
auto as_extension_owner(F&& f) -> decltype(f()) {
  return as_role(extension_owner(), 0, static_cast<F&&>(f));
}

}  // namespace agentcache::pg
