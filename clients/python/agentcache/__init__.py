"""Python client for the agentcache PostgreSQL extension (0.2.0).

    import psycopg, agentcache
    conn = psycopg.connect("dbname=app", autocommit=True)
    ac = agentcache.Client(conn)
    with ac.handle("evolution-42", "wamid.1", "wa:5511999990000", "Olá!", max_tokens=3000, keep_system=True) as msg:
        if msg.acquired:
            msg.reply(llm(msg.context))
            provider.send(...)
            msg.sent()
"""

from ._api import DedupState, Inbound, PendingReply, Turn
from ._client import AsyncClient, AsyncHandle, Client, Handle
from .errors import (AgentcacheError, ClaimLost, Duplicate, InProgress, InvalidArgument, NotHolder, NotPreloaded,
                     PermissionDenied, ReadOnly, UnknownObject, translate)

__version__ = "0.2.0"
__all__ = [
    "Client", "AsyncClient", "Handle", "AsyncHandle", "Turn", "Inbound", "PendingReply", "DedupState",
    "AgentcacheError", "NotPreloaded", "ClaimLost", "NotHolder", "InvalidArgument", "PermissionDenied",
    "UnknownObject", "ReadOnly", "Duplicate", "InProgress", "translate",
]
