// lookup() from shared memory (see read.hpp). The value is copied out under
// the read lock into a buffer sized beforehand, so nothing is allocated
// (nothing can raise) while the lock is held, and each lookup counts one hit
// or miss however many times it has to look.
#include "pg/maps/read.hpp"

#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/shmem.hpp"
#include "pg/maps/state.hpp"

#include <cstring>

using agentcache::core::MapStore;

namespace agentcache::maps::read {

namespace {

// Values up to this size are copied out into a static buffer under the read
// lock; a bigger one into a palloc'd buffer of its size (nothing long-lived).
constexpr std::size_t kSmall = 8192;
alignas(8) char g_small[kSmall];

[[noreturn]] void unknown_map(std::string_view name) {
  throw pg::sql_error(ERRCODE_UNDEFINED_OBJECT, pg::textf(FMT_STRING("map \"{}\" does not exist"), name).c_str(),
                      nullptr, "Define it with agentcache.define_map().");
}

enum class Probe { NoMap, NoKey, Copied, NeedBuffer };

// Under the read lock: copies the value of `key` into `dest` (`cap` bytes)
// and counts the lookup, once — or, when the value does not fit, reports its
// size in *size and counts nothing (the caller looks again).
Probe probe(std::string_view name, std::string_view key, char* dest, std::size_t cap, std::size_t* size) noexcept {
  MapStore* s = store();
  pg::LWLockGuard rd(read_lock(), LW_SHARED);
  const int slot = s->find(MyDatabaseId, name);
  if (slot == MapStore::kNoSlot) return Probe::NoMap;
  const std::string_view v = s->peek(slot, key);
  if (v.data() != nullptr && v.size() > cap) {
    *size = v.size();
    return Probe::NeedBuffer;
  }
  s->count(slot, v.data() != nullptr);
  if (v.data() == nullptr || v.empty()) return Probe::NoKey;  // absent, or a NULL value
  std::memcpy(dest, v.data(), v.size());
  *size = v.size();
  return Probe::Copied;
}

}  // namespace

Jsonb* lookup(const char* what, std::string_view name, std::string_view key, bool missing_ok) {
  if (missing_ok && store() == nullptr) return nullptr;
  pg::shmem::require(what);
  char* dest = g_small;
  std::size_t cap = kSmall;
  for (;;) {
    std::size_t size = 0;
    switch (probe(name, key, dest, cap, &size)) {
      case Probe::NoMap:
        if (missing_ok) return nullptr;
        unknown_map(name);
      case Probe::NoKey:
        return nullptr;
      case Probe::Copied:
        if (dest == g_small) {
          dest = static_cast<char*>(palloc(size));
          std::memcpy(dest, g_small, size);
        }
        return reinterpret_cast<Jsonb*>(dest);
      case Probe::NeedBuffer:
        dest = static_cast<char*>(palloc(size));  // the map may be swapped meanwhile: look again
        cap = size;
        break;
    }
  }
}

}  // namespace agentcache::maps::read
