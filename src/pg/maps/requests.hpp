// Work this backend asks of the worker: a reload of named maps after a
// refresh_trigger's transaction commits, and a reconcile of shared memory
// with the catalog after a define_map/drop_map transaction ends. Queued in
// shared memory (under status_lock()) and signalled through the worker's
// latch at the end of the transaction, never before.
#pragma once
#include "pg/common/pg.hpp"
#include "pg/maps/state.hpp"

namespace agentcache::maps::requests {

void register_callbacks();
// define_map/drop_map ran in this transaction.
void note_ddl() noexcept;
// refresh_trigger named this map in this transaction.
void refresh_at_commit(const char* name);

// For the worker's cycle: the requests of this database, taken (the queue is
// emptied); *reconcile / *all: a reconcile or a reload of everything was asked.
struct Taken {
  int n;
  Name* names;
};
Taken take(bool* reconcile, bool* all);
bool contains(const Taken& t, const char* name);
// Empties the queue (the extension is not installed in the worker's database).
void discard() noexcept;

}  // namespace agentcache::maps::requests
