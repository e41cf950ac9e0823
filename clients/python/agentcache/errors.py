"""The exceptions agentcache raises: psycopg errors mapped by SQLSTATE (and,
for 55000, by what the server says), so that callers catch what they can act
on. Every one keeps the original psycopg error as ``__cause__`` and its
SQLSTATE as ``sqlstate``."""

from __future__ import annotations

import psycopg


class AgentcacheError(Exception):
    """Base class; ``sqlstate`` is the server's SQLSTATE (None for client errors)."""

    def __init__(self, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


class NotPreloaded(AgentcacheError):
    """55000: the function needs shared memory and agentcache is not in
    shared_preload_libraries."""


class ClaimLost(AgentcacheError):
    """55000: this session no longer holds the claim (its lease ran out and
    another worker took the message over, or an administrator released it).
    Do not send the reply: the message is (or was) handled elsewhere."""


class NotHolder(AgentcacheError):
    """55000: this session never held the claim (call dedup_begin/inbound first)."""


class InvalidArgument(AgentcacheError):
    """22023 / 22004 / 54000 / 22021: a bad, NULL or too long argument."""


class PermissionDenied(AgentcacheError):
    """42501: the role lacks a privilege (see agentcache.grant_app)."""


class UnknownObject(AgentcacheError):
    """42704: an unknown map (or other named object)."""


class ReadOnly(AgentcacheError):
    """25006: a write on a read-only server (a standby)."""


class Duplicate(AgentcacheError):
    """Raised by ``Client.handle`` when asked to (``on_duplicate="raise"``):
    the message was already answered; ``reply`` is the stored reply, if any."""

    def __init__(self, message_id: str, reply=None):
        super().__init__(f"message {message_id!r} was already handled")
        self.message_id = message_id
        self.reply = reply


class InProgress(AgentcacheError):
    """Raised by ``Client.handle`` when asked to: another worker holds the message."""

    def __init__(self, message_id: str):
        super().__init__(f"message {message_id!r} is being handled by another worker")
        self.message_id = message_id


_BY_STATE = {
    "22023": InvalidArgument,
    "22004": InvalidArgument,
    "54000": InvalidArgument,
    "22021": InvalidArgument,
    "42501": PermissionDenied,
    "42704": UnknownObject,
    "25006": ReadOnly,
}


def translate(err: psycopg.Error) -> Exception:
    """The agentcache exception for a psycopg error (the error itself when
    agentcache has no better name for it)."""
    state = getattr(err, "sqlstate", None)
    diag = getattr(err, "diag", None)
    primary = (diag.message_primary if diag is not None else None) or str(err)
    if state == "55000":
        text = primary.lower()
        if "shared_preload_libraries" in text:
            cls = NotPreloaded
        elif "no longer holds the claim" in text:
            cls = ClaimLost
        elif "does not hold the claim" in text:
            cls = NotHolder
        else:
            return err
    else:
        cls = _BY_STATE.get(state)
        if cls is None:
            return err
    out = cls(primary, state)
    out.__cause__ = err
    return out
