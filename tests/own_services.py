"""Redis and PostgreSQL instances that a test starts, kills and restarts itself, on free
ports, never the machine's shared servers."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tests.support import free_port


def _wait_for_port(port: int, timeout: float = 20.0, up: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            reachable = probe.connect_ex(("127.0.0.1", port)) == 0
        if reachable == up:
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not come {'up' if up else 'down'} in {timeout}s")


def _terminate(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it is still up after 20 s. A Redis primary with replicas
    waits up to its shutdown-timeout (10 s) for them on SIGTERM, so a shorter wait races it."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class OwnRedis:
    """A redis-server with AOF fsynced on every write (what 'nothing lost' needs);
    `options` are more of redis-server's command-line options (TLS, a password, ...)."""

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="nexeon-redis-"))
        self.process: subprocess.Popen | None = None
        self.options = options

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "always"),
                *("--save", ""),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; only what the AOF has survives."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        _wait_for_port(self.port, up=False)

    def stop(self) -> None:
        if self.process is not None:
            _terminate(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


class OwnSentinel:
    """A redis-server in Sentinel mode watching `service` at `primary_port` (a quorum of
    one: enough for a test's SENTINEL FAILOVER)."""

    def __init__(self, service: str, primary_port: int) -> None:
        self.service = service
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="nexeon-sentinel-"))
        self.config = self.dir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {service} 127.0.0.1 {primary_port} 1\n"
            f"sentinel down-after-milliseconds {service} 1000\n"
            f"sentinel failover-timeout {service} 10000\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", str(self.config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            _terminate(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


class Forwarder:
    """A TCP forwarder on a fixed loopback port, as a DNS name or a load balancer in front
    of Redis: `target` can be moved, and only connections made after that go there
    (the ones already open keep their server, as after a DNS change)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # (wakes the accepting thread)
        self._listener.close()
        for connection in self._open:
            with contextlib.suppress(OSError):
                connection.close()


class OwnPostgres:
    """A throw-away PostgreSQL cluster (initdb as the postgres user, trust auth)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="nexeon-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.bin = self._bindir()

    @staticmethod
    def _bindir() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        assert found, "PostgreSQL server binaries are needed (/usr/lib/postgresql/*/bin)"
        return found[-1].parent

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/nexeon"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
        )

    def create(self) -> None:
        self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"
        )
        self.start()
        createdb = [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
        subprocess.run([*createdb, "-U", "postgres", "nexeon"], check=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "start"
        )
        _wait_for_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        """mode 'immediate' is a crash: no checkpoint, recovery from the WAL on start."""
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop")
        _wait_for_port(self.port, up=False)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, TimeoutError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port >= 55000 or port in ports:
            continue
        with socket.socket() as bus:
            if bus.connect_ex(("127.0.0.1", port + 10000)) == 0:
                continue
        ports.append(port)
    return ports


class OwnRedisCluster:
    """A Redis Cluster of `masters` primaries (each with `replicas` replicas) on loopback,
    created with `redis-cli --cluster create`, as a managed cluster offers it."""

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        self.masters, self.replicas = masters, replicas
        self.ports = cluster_ports(masters * (1 + replicas))
        self.dir = Path(tempfile.mkdtemp(prefix="nexeon-cluster-"))
        self.processes: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start_node(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [
                *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", "1000", "--dir", str(node_dir)),
                *("--logfile", str(node_dir / "redis.log"), "--repl-diskless-sync-delay", "0"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(port)

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        if self.masters < 3:  # (below what `redis-cli --cluster create` accepts)
            self._assign_slots()
            self.wait_until_ok()
            return
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        self.wait_until_ok()

    def _assign_slots(self) -> None:
        """Equal slot ranges to each master, which meet each other (no replicas)."""
        assert self.replicas == 0
        for index, port in enumerate(self.ports):
            low = index * 16384 // self.masters
            high = (index + 1) * 16384 // self.masters - 1
            cli = ["redis-cli", "-p", str(port), "cluster"]
            subprocess.run([*cli, "addslotsrange", str(low), str(high)], check=True)
            if index:
                subprocess.run([*cli, "meet", "127.0.0.1", str(self.ports[0])], check=True)

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """Every node sees the cluster as ok (every slot served), every replica in sync."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [
                subprocess.run(
                    ["redis-cli", "-p", str(port), "cluster", "info"],
                    capture_output=True,
                    text=True,
                ).stdout
                for port, process in self.processes.items()
                if process.poll() is None
            ]
            replicas = [
                subprocess.run(
                    ["redis-cli", "-p", str(port), "info", "replication"],
                    capture_output=True,
                    text=True,
                ).stdout
                for port in self.ports[self.masters :]
                if self.processes[port].poll() is None
            ]
            synced = all("master_link_status:up" in replica for replica in replicas)
            if synced and all("cluster_state:ok" in state for state in states):
                return
            time.sleep(0.1)
        raise TimeoutError("the cluster did not come up")

    def kill(self, port: int) -> None:
        process = self.processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def flush(self) -> None:
        for port, process in self.processes.items():
            if process.poll() is None:
                subprocess.run(
                    ["redis-cli", "-p", str(port), "flushall"],
                    capture_output=True,
                    check=False,
                )

    def stop(self) -> None:
        for process in self.processes.values():
            _terminate(process)
        shutil.rmtree(self.dir, ignore_errors=True)
