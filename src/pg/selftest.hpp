// agentcache._boundary_selftest(): proves the error boundary in both
// directions (regression suite boundary.sql).
#pragma once

namespace agentcache::selftest {
// Its shared-memory region: one LWLock, for the 'cxx_lwlock' probe.
void init();
}  // namespace agentcache::selftest
