"""The SQL API as calls: each method builds one statement and a parser of
its rows. ``Client`` runs them on a ``psycopg.Connection``,
``AsyncClient`` on a ``psycopg.AsyncConnection`` (the methods are the same;
the async ones return awaitables)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

from psycopg.types.json import Jsonb

Interval = Union[_dt.timedelta, str, None]
ROLES = ("user", "assistant", "system", "tool")


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation (get_context / get_turns / inbound)."""

    seq: int
    role: str
    content: str
    at: Optional[Union[str, _dt.datetime]] = None
    meta: Any = None
    tokens: Optional[int] = None  # get_turns only: content tokens under agentcache.token_encoding


@dataclass(frozen=True)
class Inbound:
    """inbound()'s answer: the claim's outcome, the route, the context and,
    for a duplicate, the stored reply (None when sent or none)."""

    dedup: str  # "acquired" | "duplicate" | "in_progress"
    route: Any
    context: list
    reply: Optional[dict] = None

    @property
    def acquired(self) -> bool:
        return self.dedup == "acquired"


@dataclass(frozen=True)
class PendingReply:
    message_id: str
    session_id: str
    seq: int
    content: str
    meta: Any
    completed_at: _dt.datetime


@dataclass(frozen=True)
class DedupState:
    state: str
    holder_pid: Optional[int]
    attempts: int
    fingerprint: Optional[str]
    error: Optional[str]
    updated_at: _dt.datetime
    lease_expires_at: Optional[_dt.datetime] = None
    reply_seq: Optional[int] = None
    reply_sent: Optional[bool] = None


@dataclass(frozen=True)
class Call:
    sql: str
    params: tuple = ()
    parse: Callable[[list], Any] = field(default=lambda rows: None)


def _scalar(rows: list) -> Any:
    return rows[0][0] if rows else None


def _turns_json(ctx: Any) -> list:
    return [
        Turn(seq=int(t["seq"]), role=t["role"], content=t["content"], at=t.get("at"), meta=t.get("meta"))
        for t in (ctx or [])
    ]


def _interval(v: Interval) -> Optional[str]:
    if v is None:
        return None
    if isinstance(v, _dt.timedelta):
        return f"{v.total_seconds()} seconds"
    return str(v)


class Api:
    """Every SQL-callable function of agentcache 0.2.0 (API.md)."""

    def _call(self, call: Call):  # pragma: no cover - defined by Client / AsyncClient
        raise NotImplementedError

    # ------------------------------------------------------------ conversation memory
    def add_turn(self, session_id: str, role: str, content: str, meta: Any = None):
        return self._call(Call("SELECT agentcache.add_turn(%s, %s, %s, %s)",
                               (session_id, role, content, None if meta is None else Jsonb(meta)), _scalar))

    def get_context(self, session_id: str, max_turns: Optional[int] = None, max_chars: Optional[int] = None,
                    max_tokens: Optional[int] = None, keep_system: bool = False, start_on_user: bool = False):
        return self._call(Call("SELECT agentcache.get_context(%s, %s, %s, %s, %s, %s)",
                               (session_id, max_turns, max_chars, max_tokens, keep_system, start_on_user),
                               lambda rows: _turns_json(_scalar(rows))))

    def get_turns(self, session_id: str, max_turns: Optional[int] = None, max_tokens: Optional[int] = None,
                  keep_system: bool = False, start_on_user: bool = False):
        return self._call(Call(
            "SELECT seq, role, content, meta, created_at, tokens FROM agentcache.get_turns(%s, %s, %s, %s, %s)",
            (session_id, max_turns, max_tokens, keep_system, start_on_user),
            lambda rows: [Turn(seq=r[0], role=r[1], content=r[2], meta=r[3], at=r[4], tokens=r[5]) for r in rows]))

    def warm_session(self, session_id: str):
        return self._call(Call("SELECT agentcache.warm_session(%s)", (session_id,), _scalar))

    def end_session(self, session_id: str):
        return self._call(Call("SELECT agentcache.end_session(%s)", (session_id,), _scalar))

    def forget_session(self, session_id: str):
        return self._call(Call("SELECT agentcache.forget_session(%s)", (session_id,), _scalar))

    def token_count(self, content: str, encoding: str = "o200k_base"):
        return self._call(Call("SELECT agentcache.token_count(%s, %s)", (content, encoding), _scalar))

    # ------------------------------------------------------------ TTL cache
    def put(self, namespace: str, key: str, value: Any, ttl: Interval = None, tags: Sequence[str] = ()):
        return self._call(Call("SELECT agentcache.put(%s, %s, %s, %s::interval, %s::text[])",
                               (namespace, key, Jsonb(value), _interval(ttl), list(tags))))

    def get(self, namespace: str, key: str):
        return self._call(Call("SELECT agentcache.get(%s, %s)", (namespace, key), _scalar))

    def fetch(self, namespace: str, key: str, query: str, ttl: Interval = None, stale_if_error: Interval = None):
        """Read-through: the cached value, else ``query`` (SQL returning one jsonb) run once
        (single flight) and stored."""
        return self._call(Call("SELECT agentcache.fetch(%s, %s, %s, %s::interval, %s::interval)",
                               (namespace, key, query, _interval(ttl), _interval(stale_if_error)), _scalar))

    def invalidate(self, namespace: str, key: str):
        return self._call(Call("SELECT agentcache.invalidate(%s, %s)", (namespace, key), _scalar))

    def invalidate_tag(self, tag: str):
        return self._call(Call("SELECT agentcache.invalidate_tag(%s)", (tag,), _scalar))

    def clear(self, namespace: str):
        return self._call(Call("SELECT agentcache.clear(%s)", (namespace,), _scalar))

    # ------------------------------------------------------------ deduplication
    def dedup_begin(self, message_id: str, conversation_id: Optional[str] = None, body: Optional[str] = None,
                    within: Interval = None, lease: Interval = None):
        return self._call(Call("SELECT agentcache.dedup_begin(%s, %s, %s, %s::interval, %s::interval)",
                               (message_id, conversation_id, body, _interval(within), _interval(lease)), _scalar))

    def dedup_complete(self, message_id: str):
        return self._call(Call("SELECT agentcache.dedup_complete(%s)", (message_id,)))

    def dedup_fail(self, message_id: str, error: Optional[str] = None):
        return self._call(Call("SELECT agentcache.dedup_fail(%s, %s)", (message_id, error)))

    def dedup_state(self, message_id: str):
        return self._call(Call(
            "SELECT state, holder_pid, attempts, fingerprint, error, updated_at, lease_expires_at, reply_seq,"
            " reply_sent FROM agentcache.dedup_state(%s)", (message_id,),
            lambda rows: DedupState(*rows[0]) if rows else None))

    # ------------------------------------------------------------ the hot path
    def inbound(self, instance: str, message_id: str, session_id: str, body: str, max_turns: Optional[int] = None,
                max_tokens: Optional[int] = None, keep_system: bool = False, start_on_user: bool = False):
        def parse(rows):
            r = _scalar(rows) or {}
            return Inbound(dedup=r.get("dedup"), route=r.get("route"), context=_turns_json(r.get("context")),
                           reply=r.get("reply"))
        return self._call(Call("SELECT agentcache.inbound(%s, %s, %s, %s, %s, %s, %s, %s)",
                               (instance, message_id, session_id, body, max_turns, max_tokens, keep_system,
                                start_on_user), parse))

    def outbound(self, message_id: str, session_id: str, reply: str, meta: Any = None):
        return self._call(Call("SELECT agentcache.outbound(%s, %s, %s, %s)",
                               (message_id, session_id, reply, None if meta is None else Jsonb(meta)), _scalar))

    def reply_sent(self, message_id: str):
        return self._call(Call("SELECT agentcache.reply_sent(%s)", (message_id,), _scalar))

    def pending_replies(self, older_than: Interval = "1 minute", max_rows: int = 100):
        """Due unsent replies, locked for this transaction (SKIP LOCKED): call inside
        ``conn.transaction()`` and mark each with ``reply_sent`` before it commits."""
        return self._call(Call(
            "SELECT message_id, session_id, seq, content, meta, completed_at"
            " FROM agentcache.pending_replies(%s::interval, %s)", (_interval(older_than), max_rows),
            lambda rows: [PendingReply(*r) for r in rows]))

    # ------------------------------------------------------------ maps, observability
    def lookup(self, name: str, key: str):
        return self._call(Call("SELECT agentcache.lookup(%s, %s)", (name, key), _scalar))

    def resolve_instance(self, instance: str):
        return self._call(Call("SELECT agentcache.resolve_instance(%s)", (instance,), _scalar))

    def health(self):
        return self._call(Call("SELECT agentcache.health()", (), _scalar))

    def stats(self):
        return self._call(Call(
            "SELECT tier, name, entries, bytes, hits, misses, stale_hits, evictions, expirations, invalidations"
            " FROM agentcache.stats()", (),
            lambda rows: [dict(zip(("tier", "name", "entries", "bytes", "hits", "misses", "stale_hits", "evictions",
                                    "expirations", "invalidations"), r)) for r in rows]))
