// Writing rows of the extension's own tables without SPI, the planner or the
// executor, the way logical replication's apply worker writes them: the heap
// tuple through the table AM, then an entry in every index. Used on the hot
// paths (put, add_turn) only while the table's shape is as the install
// script made it and no row-level security applies; its NOT NULL and CHECK
// constraints are evaluated on each row (Constraints). Callers check with the
// predicates below and fall back to SQL otherwise, so an administrator's
// trigger, policy, constraint or index still applies, with its own error.
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::pg::rows {

// The columns are exactly `types` (none dropped, none generated), row-level
// security is off, and every index is plain: no expressions, no exclusion,
// checked immediately, and no predicate unless `partial_ok` (the index
// entries below then judge each row by the index's predicate).
bool plain_table(Relation rel, const Oid* types, int ntypes, bool partial_ok = false);

// `roleid` holds every privilege in `need` on the table itself.
bool has_privileges(Oid relid, Oid roleid, AclMode need);

// Index entries for the row just stored from `slot` (an insert, or an update
// that was not HOT: `update` is then a hint that the key did not change), in
// every index ready for inserts — or, after a HOT update that still needs
// them (`summarizing_only`, PostgreSQL 16+), in the summarizing ones only.
void insert_index_entries(Relation rel, TupleTableSlot* slot, bool update, bool summarizing_only = false);

// Inserts the row in `slot` with its index entries the way INSERT … ON
// CONFLICT does: speculatively, judged by the unique index `arbiter`. When a
// concurrent insert of the same key (one that took none of our locks, e.g.
// an application's plain INSERT) is found, the row is taken back at once
// (super-deleted) and false is returned: the caller looks again instead of
// raising 23505.
bool insert_speculative(Relation rel, TupleTableSlot* slot, Oid arbiter);

// Fills `slot` with `values`/`nulls` (one per column) as a virtual tuple.
void store_values(TupleTableSlot* slot, const Datum* values, const bool* nulls);

// Whether row-level security applies to the current user on `relid` (as
// check_enable_rls says; with row_security = off where it would apply, the
// same ERROR a query would raise).
bool row_security(Oid relid);

// The NOT NULL and CHECK constraints of a relation, judged on a row about to
// be written directly: every CHECK by its expression (whatever its name, and
// whoever added it), NOT NULL from the tuple descriptor. A row that fails one
// goes to SQL instead, which raises the constraint's own error. Built at the
// point of use after an invalidation (the relcache callback only marks it
// stale: nothing it holds is freed while a caller may be using it).
class Constraints {
 public:
  void invalidate() noexcept { stale_ = true; }
  // True when the row in `slot` satisfies them; `rel` is open.
  bool satisfied(Relation rel, TupleTableSlot* slot);

 private:
  void build(Relation rel);
  bool stale_ = true;
  MemoryContext cxt_ = nullptr;
  int natts_ = 0;
  bool* not_null_ = nullptr;  // per column
  int nchecks_ = 0;
  ExprState** checks_ = nullptr;
  ExprContext* econtext_ = nullptr;
};

}  // namespace agentcache::pg::rows
