"""The hot path's own Redis client, against the real Redis (and a silent fake)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import pytest
from django.conf import settings

from credit.resp import FastRedis, RedisReplyError, RedisUnavailable, pack
from credit.scripts import script
from tests.support import free_port


def test_pack_is_resp_bulk_strings():
    assert pack(("SET", b"k", 12)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"
    assert pack(("GET", "é")) == b"*2\r\n$3\r\nGET\r\n$2\r\n\xc3\xa9\r\n"


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_commands_share_one_connection_and_get_their_own_replies(redis_client):
    async def scenario():
        client = FastRedis(settings.REDIS_URL)
        values = await asyncio.gather(*(client.call("INCR", "counter") for _ in range(500)))
        echoes = await asyncio.gather(*(client.call("ECHO", f"m{i}") for i in range(200)))
        client.close()
        return values, echoes

    values, echoes = run(scenario())
    assert sorted(values) == list(range(1, 501))
    assert echoes == [f"m{i}".encode() for i in range(200)]
    assert int(redis_client.get("counter")) == 500  # and in the URL's database


def test_scripts_load_themselves_after_a_script_flush(redis_client):
    async def scenario():
        client = FastRedis(settings.REDIS_URL)
        first = await client.run_script(script("t", "return ARGV[1] + 1"), [], [41])
        await client.call("SCRIPT", "FLUSH")
        second = await client.run_script(script("t", "return ARGV[1] + 1"), [], [1])
        client.close()
        return first, second

    assert run(scenario()) == (42, 2)


def test_a_sent_script_reaches_redis_even_if_its_sender_dies_before_the_reply(redis_client):
    """What settlements rely on to answer the client before Redis's acknowledgement."""

    async def scenario():
        client = FastRedis(settings.REDIS_URL)
        assert await client.call("PING") == b"PONG"  # connected and idle
        started = client.send_script(
            script("t", "return redis.call('SET', KEYS[1], ARGV[1])"), ["k"], [7]
        )
        assert started.written  # before this returns, nothing awaited
        client._connection.transport.abort()  # as if the process died right here

    run(scenario())
    deadline = time.monotonic() + 2
    while redis_client.get("k") is None:
        assert time.monotonic() < deadline, "the script never ran"
        time.sleep(0.01)
    assert redis_client.get("k") == b"7"


def test_a_script_sent_while_replies_are_outstanding_leaves_with_the_loop_turn(redis_client):
    async def scenario():
        client = FastRedis(settings.REDIS_URL)
        await client.call("PING")
        first = client.send_script(script("t", "return redis.call('INCR', KEYS[1])"), ["n"], [])
        second = client.send_script(script("t", "return redis.call('INCR', KEYS[1])"), ["n"], [])
        assert first.written  # the connection was idle: written at once
        assert not second.written  # a reply is outstanding: it joins this turn's write
        assert await second.leave()
        return await first.reply(), await second.reply()

    assert run(scenario()) == (1, 2)


def test_a_script_sent_before_connecting_and_after_a_script_flush(redis_client):
    async def scenario():
        client = FastRedis(settings.REDIS_URL)
        cold = client.send_script(script("t", "return ARGV[1] * 2"), [], [21])
        assert not cold.written and not await cold.leave()  # no connection yet: nothing sent
        assert await cold.reply() == 42  # sent (in full, with EVAL) once connected
        await client.call("SCRIPT", "FLUSH")
        again = client.send_script(script("t", "return ARGV[1] * 2"), [], [5])
        assert again.written  # as EVALSHA: this connection ran it, the server forgot it
        return await again.reply()

    assert run(scenario()) == 10


def test_an_error_reply_raises_and_the_connection_stays_usable(redis_client):
    async def scenario():
        client = FastRedis(settings.REDIS_URL)
        await client.call("SET", "text", "abc")
        with pytest.raises(RedisReplyError, match=r"WRONGTYPE|not an integer"):
            await client.call("INCR", "text")
        with pytest.raises(RedisReplyError):
            await client.run_script(script("t", "return redis.call('NOPE')"), [], [])
        assert await client.call("PING") == b"PONG"
        client.close()

    run(scenario())


def test_a_dead_server_is_redis_unavailable():
    async def scenario():
        client = FastRedis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1)
        with pytest.raises(RedisUnavailable):
            await client.call("PING")

    run(scenario())


def test_a_silent_server_times_out_and_the_next_call_reconnects():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    async def scenario():
        client = FastRedis(f"redis://127.0.0.1:{port}/0", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await asyncio.gather(client.call("PING"), client.call("PING"))
        assert time.monotonic() - started < 2
        client.port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
        assert await client.call("PING") == b"PONG"
        client.close()

    try:
        run(scenario())
    finally:
        listener.close()


def test_a_connection_killed_by_the_server_is_replaced(redis_client):
    async def scenario():
        client = FastRedis(settings.REDIS_URL)
        victim = await client.call("CLIENT", "ID")
        # Only this connection: the Redis server is shared with other test processes.
        assert redis_client.client_kill_filter(_id=victim) == 1
        await asyncio.sleep(0.1)
        assert await client.call("PING") == b"PONG"
        client.close()

    run(scenario())


def test_password_and_database_from_the_url(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--requirepass", "s3cret", "--save", ""],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        async def scenario():
            client = FastRedis(f"redis://:s3cret@127.0.0.1:{port}/3")
            await client.call("SET", "where", "here")
            info = (await client.call("CLIENT", "INFO")).decode()
            client.close()
            wrong = FastRedis(f"redis://:nope@127.0.0.1:{port}/0")
            with pytest.raises(RedisUnavailable, match="AUTH"):
                await wrong.call("PING")
            return info

        assert " db=3 " in run(scenario())
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_server_turned_replica_has_its_connection_replaced():
    """READONLY (a failover demoted the server): the command fails as RedisUnavailable,
    the commands already sent on the connection still get their replies, and the next
    command opens a new connection."""
    from tests.own_services import OwnRedis

    primary, server = OwnRedis(), OwnRedis()
    primary.start()
    server.start()

    async def scenario():
        client = FastRedis(server.url)
        await client.call("SET", "k", "v")
        first = await client.call("CLIENT", "ID")
        await client.call("REPLICAOF", "127.0.0.1", primary.port)
        write, read = await asyncio.gather(
            client.call("SET", "k", "w"), client.call("CLIENT", "ID"), return_exceptions=True
        )
        assert isinstance(write, RedisUnavailable) and "READONLY" in str(write)
        assert read == first  # answered on the retired connection
        await client.call("REPLICAOF", "NO", "ONE")
        assert await client.call("CLIENT", "ID") != first
        client.close()

    try:
        run(scenario())
    finally:
        primary.stop()
        server.stop()


def test_failed_connects_are_spaced_by_a_short_backoff():
    from credit.resp import BACKOFF, MAX_BACKOFF

    async def scenario():
        client = FastRedis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1)
        with pytest.raises(RedisUnavailable, match="cannot connect"):
            await client.call("PING")
        with pytest.raises(RedisUnavailable, match="reconnecting shortly"):
            await client.call("PING")  # no attempt: fails at once
        await asyncio.sleep(BACKOFF)
        with pytest.raises(RedisUnavailable, match="cannot connect"):
            await client.call("PING")
        client.port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
        await asyncio.sleep(2 * BACKOFF)
        assert await client.call("PING") == b"PONG"
        assert client._failures == 0 and 2 * BACKOFF <= MAX_BACKOFF
        client.close()

    run(scenario())


def test_a_script_error_of_redis_6_is_read_by_its_inner_code():
    from credit.resp import error_code

    inner = (
        "ERR Error running script (call to f_0a1b): @user_script:12: @user_script: 12: "
        "-READONLY You can't write against a read only replica."
    )
    assert error_code(inner) == "READONLY"
    assert error_code("OOM command not allowed when used memory > 'maxmemory'.") == "OOM"
    assert error_code("ERR wrong number of arguments for 'get' command") == "ERR"


def test_a_node_client_shares_the_urls_credentials_on_another_address(tmp_path):
    """What a Redis Cluster client needs per node: the same password, TLS and time-outs,
    another host and port."""
    from tests.own_services import OwnRedis

    node = OwnRedis("--requirepass", "s3cret")
    node.start()

    async def scenario():
        seed = FastRedis(f"redis://:s3cret@127.0.0.1:{free_port()}/0", timeout=1.5)
        other = seed.node("127.0.0.1", node.port)
        assert (other.timeout, other.target.password) == (1.5, "s3cret")
        assert await other.call("PING") == b"PONG"
        other.close()

    try:
        run(scenario())
    finally:
        node.stop()


@pytest.mark.parametrize(
    "refusal",
    [
        b"-LOADING Redis is loading the dataset in memory\r\n",
        b"-MASTERDOWN Link with MASTER is down\r\n",
    ],
)
def test_a_server_that_cannot_serve_yet_has_its_connection_replaced(refusal):
    """LOADING (restarting) or MASTERDOWN: RedisUnavailable, and the next command goes out
    on a new connection (here a server that answers its first connection with the refusal
    and later ones with PONG)."""

    async def scenario():
        connections = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            answer = refusal if connections == 1 else b"+PONG\r\n"
            while await reader.read(65536):
                writer.write(answer)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = FastRedis(f"redis://127.0.0.1:{port}/0")
        with pytest.raises(RedisUnavailable, match=refusal[1:8].decode()):
            await client.call("PING")
        assert await client.call("PING") == b"PONG"
        assert connections == 2
        client.close()
        server.close()

    run(scenario())
