// Every shared-memory structure of agentcache, requested in shmem_request_hook
// and attached in shmem_startup_hook (only when preloaded).
#pragma once
#include "pg/pg.hpp"
#include "agentcache/core/session_cache.hpp"

namespace agentcache::shmem {

constexpr std::uint32_t kSessionPartitions = 16;

// True when the library was loaded through shared_preload_libraries.
bool preloaded() noexcept;
// Throws sql_error 55000 naming shared_preload_libraries (with the line to
// add as hint) unless preloaded. `what` names the caller in the message.
void require(const char* what);

core::SessionCache* sessions() noexcept;  // nullptr when not preloaded
LWLock* session_lock(std::uint32_t partition) noexcept;
LWLock* selftest_lock() noexcept;
std::size_t session_memory_limit() noexcept;  // bytes, from the GUC at start-up

void install_hooks();  // from _PG_init, when preloading

}  // namespace agentcache::shmem
