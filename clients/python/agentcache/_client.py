"""Client (psycopg.Connection) and AsyncClient (psycopg.AsyncConnection),
and the claim -> LLM -> reply flow as a context manager (``handle``)."""

from __future__ import annotations

from typing import Any, Optional

import psycopg

from ._api import Api, Call, Inbound
from .errors import ClaimLost, Duplicate, InProgress, translate


class Client(Api):
    """agentcache over one psycopg connection. Each call is one statement in
    the connection's current transaction (with ``autocommit=True``, its own)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def _call(self, call: Call):
        try:
            with self.conn.cursor() as cur:
                cur.execute(call.sql, call.params, prepare=True)
                rows = cur.fetchall() if cur.description is not None else []
        except psycopg.Error as e:
            raise translate(e) from e
        return call.parse(rows)

    def handle(self, instance: str, message_id: str, session_id: str, body: str, *, on_duplicate: str = "return",
               **context_args: Any) -> "Handle":
        """One inbound webhook message: ``with client.handle(...) as msg:`` —
        ``msg.inbound`` is inbound()'s answer; when ``msg.acquired``, call
        ``msg.reply(text)`` (outbound: the reply stored with the completed
        claim), send it, then ``msg.sent()``. If the block raises (the LLM call
        failed) or ends without a reply, the claim is failed (dedup_fail) so
        that a re-delivery retries it; the exception propagates. A reply whose
        claim was taken over raises ``ClaimLost``: do not send it.
        ``on_duplicate="raise"`` raises ``Duplicate`` / ``InProgress`` at entry
        instead of returning a handle that is not acquired."""
        if not self.conn.autocommit:
            raise ValueError("handle() needs an autocommit connection: the claim must commit before the LLM call")
        return Handle(self, (instance, message_id, session_id, body), context_args, on_duplicate)


class _HandleBase:
    def __init__(self, client, args, context_args, on_duplicate):
        self.client = client
        self.instance, self.message_id, self.session_id, self.body = args
        self._context_args = context_args
        self._on_duplicate = on_duplicate
        self.inbound: Optional[Inbound] = None
        self.seq: Optional[int] = None  # the reply turn's seq once replied

    @property
    def acquired(self) -> bool:
        return self.inbound is not None and self.inbound.acquired

    @property
    def context(self) -> list:
        return self.inbound.context if self.inbound else []

    @property
    def route(self) -> Any:
        return self.inbound.route if self.inbound else None

    def _check_outcome(self):
        if self._on_duplicate == "raise" and not self.acquired:
            if self.inbound.dedup == "duplicate":
                raise Duplicate(self.message_id, self.inbound.reply)
            raise InProgress(self.message_id)

    def _failure(self, exc) -> Optional[str]:
        """The dedup_fail error to record when leaving, or None to record nothing."""
        if not self.acquired or self.seq is not None:
            return None
        if isinstance(exc, ClaimLost):
            return None  # fenced: nothing to record, the message is someone else's now
        if exc is None:
            return "the handler returned without a reply"
        return f"{type(exc).__name__}: {exc}"[:1000]


class Handle(_HandleBase):
    def __enter__(self) -> "Handle":
        self.inbound = self.client.inbound(self.instance, self.message_id, self.session_id, self.body,
                                           **self._context_args)
        self._check_outcome()
        return self

    def reply(self, text: str, meta: Any = None) -> int:
        if not self.acquired:
            raise ValueError(f"message {self.message_id!r} was not acquired ({self.inbound.dedup})")
        self.seq = self.client.outbound(self.message_id, self.session_id, text, meta)
        return self.seq

    def sent(self) -> bool:
        return self.client.reply_sent(self.message_id)

    def __exit__(self, exc_type, exc, tb) -> bool:
        error = self._failure(exc)
        if error is not None:
            try:
                self.client.dedup_fail(self.message_id, error)
            except ClaimLost:
                pass  # taken over meanwhile: nothing of ours to fail
        return False


class AsyncClient(Api):
    """agentcache over one psycopg AsyncConnection: the same methods, awaited."""

    def __init__(self, conn: psycopg.AsyncConnection):
        self.conn = conn

    async def _call(self, call: Call):
        try:
            async with self.conn.cursor() as cur:
                await cur.execute(call.sql, call.params, prepare=True)
                rows = await cur.fetchall() if cur.description is not None else []
        except psycopg.Error as e:
            raise translate(e) from e
        return call.parse(rows)

    def handle(self, instance: str, message_id: str, session_id: str, body: str, *, on_duplicate: str = "return",
               **context_args: Any) -> "AsyncHandle":
        """``async with client.handle(...) as msg:`` — as ``Client.handle``."""
        if not self.conn.autocommit:
            raise ValueError("handle() needs an autocommit connection: the claim must commit before the LLM call")
        return AsyncHandle(self, (instance, message_id, session_id, body), context_args, on_duplicate)


class AsyncHandle(_HandleBase):
    async def __aenter__(self) -> "AsyncHandle":
        self.inbound = await self.client.inbound(self.instance, self.message_id, self.session_id, self.body,
                                                 **self._context_args)
        self._check_outcome()
        return self

    async def reply(self, text: str, meta: Any = None) -> int:
        if not self.acquired:
            raise ValueError(f"message {self.message_id!r} was not acquired ({self.inbound.dedup})")
        self.seq = await self.client.outbound(self.message_id, self.session_id, text, meta)
        return self.seq

    async def sent(self) -> bool:
        return await self.client.reply_sent(self.message_id)

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        error = self._failure(exc)
        if error is not None:
            try:
                await self.client.dedup_fail(self.message_id, error)
            except ClaimLost:
                pass
        return False
