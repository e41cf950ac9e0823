"""The Python client against a real server (clients/run.sh)."""

import asyncio
import datetime as dt
import uuid

import psycopg
import pytest

import agentcache
from agentcache import ClaimLost, Client, InvalidArgument, NotHolder


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_conversation_round_trip(conn):
    ac = Client(conn)
    s = uid("py-sess")
    assert ac.add_turn(s, "system", "You are the clinic assistant.") == 1
    assert ac.add_turn(s, "user", "Olá! Posso marcar para quinta?") == 2
    assert ac.add_turn(s, "assistant", "Quinta 10:30 está livre.", {"model": "stub", "n": 1}) == 3
    ctx = ac.get_context(s)
    assert [t.seq for t in ctx] == [1, 2, 3]
    assert [t.role for t in ctx] == ["system", "user", "assistant"]
    assert ctx[2].meta == {"model": "stub", "n": 1}
    assert ctx[1].content == "Olá! Posso marcar para quinta?"
    turns = ac.get_turns(s)
    assert [t.tokens for t in turns] == [ac.token_count(t.content) for t in turns]
    assert isinstance(turns[0].at, dt.datetime)
    # a token budget that keeps the system turn and the newest turn only
    budget = ac.token_count(ctx[0].content) + 4 + ac.token_count(ctx[2].content) + 4
    assert [t.seq for t in ac.get_context(s, max_tokens=budget, keep_system=True)] == [1, 3]
    assert [t.seq for t in ac.get_context(s, max_tokens=budget, keep_system=True, start_on_user=True)] == [1]
    assert ac.forget_session(s) == 3
    assert ac.get_context(s) == []


def test_token_count_and_errors(conn):
    ac = Client(conn)
    assert ac.token_count("Hello, world!") == 4
    assert ac.token_count("Hello, world!", "cl100k_base") == 4
    with pytest.raises(InvalidArgument) as e:
        ac.token_count("x", "p50k_base")
    assert e.value.sqlstate == "22023"
    assert isinstance(e.value.__cause__, psycopg.Error)
    with pytest.raises(InvalidArgument) as e:
        ac.add_turn(uid("s"), "robot", "x")
    assert e.value.sqlstate == "22023"
    with pytest.raises(InvalidArgument) as e:
        ac.get_context(uid("s"), max_tokens=-1)
    assert e.value.sqlstate == "22023"


def test_ttl_cache(conn):
    ac = Client(conn)
    ns = uid("py-ns")
    assert ac.get(ns, "k") is None
    ac.put(ns, "k", {"price": 120.5, "items": [1, 2]}, ttl=dt.timedelta(minutes=5), tags=["catalog"])
    assert ac.get(ns, "k") == {"price": 120.5, "items": [1, 2]}
    assert ac.fetch(ns, "f", "SELECT jsonb_build_object('n', 42)") == {"n": 42}
    assert ac.fetch(ns, "f", "SELECT jsonb_build_object('n', 0)") == {"n": 42}  # cached
    assert ac.invalidate(ns, "f") is True
    assert ac.invalidate_tag("catalog") >= 1
    assert ac.get(ns, "k") is None
    ac.put(ns, "a", 1)
    assert ac.clear(ns) >= 1


def test_dedup_and_fencing(conn, conn2):
    a, b = Client(conn), Client(conn2)
    m = uid("py-msg")
    assert a.dedup_begin(m) == "acquired"
    assert b.dedup_begin(m) == "in_progress"
    with pytest.raises(NotHolder):
        b.dedup_complete(m)
    a.dedup_complete(m)
    assert b.dedup_begin(m) == "duplicate"
    st = a.dedup_state(m)
    assert st.state == "completed" and st.attempts == 1
    # a lease that runs out: the second worker takes over, the first is fenced
    m2 = uid("py-msg")
    assert a.dedup_begin(m2, lease=dt.timedelta(milliseconds=1)) == "acquired"
    conn.execute("SELECT pg_sleep(0.01)")
    assert b.dedup_begin(m2) == "acquired"
    with pytest.raises(ClaimLost) as e:
        a.dedup_complete(m2)
    assert e.value.sqlstate == "55000"
    b.dedup_complete(m2)


def test_handle_flow_reply_duplicate_and_outbox(conn, conn2):
    ac, other = Client(conn), Client(conn2)
    s, m = uid("py-sess"), uid("wamid")
    with ac.handle("no-instance", m, s, "Quero marcar uma consulta") as msg:
        assert msg.acquired
        assert [t.content for t in msg.context] == ["Quero marcar uma consulta"]
        assert msg.reply("Claro! Qual dia?") == 2
        # not yet sent: the re-delivered webhook gets the stored reply
        again = other.inbound("no-instance", m, s, "Quero marcar uma consulta")
        assert again.dedup == "duplicate"
        assert again.reply["content"] == "Claro! Qual dia?"
    # the resender sees it until it is marked sent
    with conn2.transaction():
        due = [p for p in other.pending_replies("0 s", 1000) if p.message_id == m]
    assert len(due) == 1 and due[0].content == "Claro! Qual dia?" and due[0].seq == 2
    assert ac.reply_sent(m) is True
    assert other.inbound("no-instance", m, s, "Quero marcar uma consulta").reply is None
    with pytest.raises(agentcache.Duplicate):
        with ac.handle("no-instance", m, s, "Quero marcar uma consulta", on_duplicate="raise"):
            pass


def test_handle_flow_failure_releases_for_retry(conn):
    ac = Client(conn)
    s, m = uid("py-sess"), uid("wamid")

    class LLMDown(Exception):
        pass

    with pytest.raises(LLMDown):
        with ac.handle("no-instance", m, s, "oi") as msg:
            assert msg.acquired
            raise LLMDown("timeout")
    st = ac.dedup_state(m)
    assert st.state == "failed" and "LLMDown: timeout" in st.error
    # the re-delivery retries it (attempt 2) and does not add the user turn again
    with ac.handle("no-instance", m, s, "oi") as msg:
        assert msg.acquired
        msg.reply("olá!")
    assert ac.dedup_state(m).attempts == 2
    assert [t.role for t in ac.get_turns(s)] == ["user", "assistant"]


def test_handle_needs_autocommit(dsn):
    with psycopg.connect(dsn) as c:
        with pytest.raises(ValueError):
            Client(c).handle("i", "m", "s", "b")


def test_async_client(dsn):
    async def main():
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as c:
            ac = agentcache.AsyncClient(c)
            s, m = uid("py-async"), uid("wamid")
            assert await ac.token_count("Hello, world!") == 4
            async with ac.handle("no-instance", m, s, "hello", max_tokens=100) as msg:
                assert msg.acquired
                assert await msg.reply("hi!") == 2
                assert await msg.sent() is True
            assert [t.role for t in await ac.get_turns(s)] == ["user", "assistant"]
            with pytest.raises(agentcache.NotHolder):
                await ac.dedup_complete(uid("never"))

    asyncio.run(main())


def test_not_preloaded_maps_to_its_exception():
    err = agentcache.translate(_fake_error("55000", "agentcache is not loaded via shared_preload_libraries"))
    assert isinstance(err, agentcache.NotPreloaded)


def _fake_error(state, message):
    class Diag:
        message_primary = message

    class Fake(psycopg.Error):
        sqlstate = state
        diag = Diag()

    return Fake(message)
