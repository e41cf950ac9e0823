"""The server under test: AGENTCACHE_TEST_DSN (clients/run.sh starts a
throwaway preloaded cluster and sets it)."""

import os

import psycopg
import pytest

DSN = os.environ.get("AGENTCACHE_TEST_DSN")


@pytest.fixture(scope="session")
def dsn():
    if not DSN:
        pytest.fail("AGENTCACHE_TEST_DSN is not set: run the tests with clients/run.sh")
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS agentcache")
    return DSN


@pytest.fixture
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture
def conn2(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c
