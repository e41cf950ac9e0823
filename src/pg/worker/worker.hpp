// The background worker: registration, signals and its loop. It knows no
// tier: it runs the jobs tiers registered with pg::sweeps.
#pragma once

namespace agentcache::worker {
// The GUC agentcache.database, and the worker itself when preloading.
void init();
}  // namespace agentcache::worker
