// lookup() from shared memory (see read.hpp). The value is copied out under
// the read lock into a backend-local buffer sized beforehand, so nothing is
// allocated (nothing can raise) while the lock is held.
#include "pg/maps/read.hpp"

#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/shmem.hpp"
#include "pg/maps/state.hpp"

#include <cstring>

using agentcache::core::MapStore;

namespace agentcache::maps::read {

namespace {

char* g_value_buf = nullptr;
std::size_t g_value_cap = 0;

[[noreturn]] void unknown_map(std::string_view name) {
  throw pg::sql_error(ERRCODE_UNDEFINED_OBJECT, pg::textf(FMT_STRING("map \"{}\" does not exist"), name).c_str(),
                      nullptr, "Define it with agentcache.define_map().");
}

enum class Probe { NoMap, NoKey, Copied, NeedBuffer };

Probe probe(std::string_view name, std::string_view key, std::size_t* size) noexcept {
  MapStore* s = store();
  pg::LWLockGuard rd(read_lock(), LW_SHARED);
  const int slot = s->find(MyDatabaseId, name);
  if (slot == MapStore::kNoSlot) return Probe::NoMap;
  const std::string_view v = s->lookup(slot, key);
  if (v.data() == nullptr || v.empty()) return Probe::NoKey;
  *size = v.size();
  if (v.size() > g_value_cap) return Probe::NeedBuffer;
  std::memcpy(g_value_buf, v.data(), v.size());
  return Probe::Copied;
}

}  // namespace

Jsonb* lookup(const char* what, std::string_view name, std::string_view key, bool missing_ok) {
  if (missing_ok && store() == nullptr) return nullptr;
  pg::shmem::require(what);
  for (;;) {
    std::size_t size = 0;
    switch (probe(name, key, &size)) {
      case Probe::NoMap:
        if (missing_ok) return nullptr;
        unknown_map(name);
      case Probe::NoKey:
        return nullptr;
      case Probe::Copied: {
        char* out = static_cast<char*>(palloc(size));
        std::memcpy(out, g_value_buf, size);
        return reinterpret_cast<Jsonb*>(out);
      }
      case Probe::NeedBuffer:
        if (g_value_buf) pfree(g_value_buf);
        g_value_buf = nullptr;
        g_value_cap = 0;
        g_value_buf = static_cast<char*>(MemoryContextAlloc(TopMemoryContext, size * 2));
        g_value_cap = size * 2;
        break;  // the map may have been swapped meanwhile: look again
    }
  }
}

}  // namespace agentcache::maps::read
