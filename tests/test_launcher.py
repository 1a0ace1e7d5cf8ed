"""The launcher starts processes it can account for and stops exactly those."""

import os
import signal
import socket
import time

import pytest

from services.localstack.config import StackSettings
from services.localstack.launcher import Stack, StackError
from tests.conftest import TEST_PORT_SHIFT



@pytest.fixture
def small_stack(tmp_path):
    """Only Redis and object storage: enough to exercise start, health, records and stop."""
    ports = StackSettings.shifted_ports(TEST_PORT_SHIFT + 1_000)  # beside the session's test stack
    stack = Stack(StackSettings(run_dir=tmp_path, model=str(tmp_path), stop_grace_s=5, **ports),
                  only=["redis", "storage"])
    stack._ensure_model = lambda log: None
    yield stack
    stack.down(log=lambda _: None)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_up_then_down_leaves_no_process_and_no_port(small_stack):
    small_stack.up(log=lambda _: None)
    pids = {s.name: s.pid for s in small_stack.status()}
    assert [s.state for s in small_stack.status()] == ["healthy", "healthy", "running"]
    assert all(pid and os.path.exists(f"/proc/{pid}") for pid in pids.values())
    assert (small_stack.run / "storage" / "vizsearch").is_dir(), "the bucket is created at start"

    small_stack.down(log=lambda _: None)
    assert [s.state for s in small_stack.status()] == ["stopped", "stopped", "stopped"]
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids.values())
    assert not port_open(small_stack.settings.redis_port) and not port_open(small_stack.settings.storage_port)
    assert list((small_stack.run / "pids").iterdir()) == []


def test_up_is_idempotent(small_stack):
    small_stack.up(log=lambda _: None)
    first = [s.pid for s in small_stack.status()]
    small_stack.up(log=lambda _: None)
    assert [s.pid for s in small_stack.status()] == first


def test_a_reused_pid_is_never_signalled(small_stack):
    (small_stack.run / "pids").mkdir(parents=True)
    # Our own PID with a start time that is not ours: a record left from another boot.
    (small_stack.run / "pids" / "redis.pid").write_text(f"{os.getpid()} 1\n")
    assert small_stack.pid("redis") is None
    assert small_stack.status()[0].state == "dead"
    small_stack.down(log=lambda _: None)  # must not kill the test process
    assert not (small_stack.run / "pids" / "redis.pid").exists()


def test_a_taken_port_is_reported_by_name(small_stack):
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier tests leave TIME_WAIT
        squatter.bind(("127.0.0.1", small_stack.settings.redis_port))
        squatter.listen()
        with pytest.raises(StackError, match=f"redis: port {small_stack.settings.redis_port} is already taken"):
            small_stack.up(log=lambda _: None)


def test_a_component_that_exits_is_restarted_by_the_supervisor(small_stack):
    small_stack.up(log=lambda _: None)
    first = small_stack.pid("redis")
    os.killpg(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while small_stack.pid("redis") in (None, first):
        assert time.monotonic() < deadline, "redis was not restarted"
        time.sleep(0.2)
    small_stack.wait_healthy("redis")
    log = (small_stack.run / "logs" / "supervisor.log").read_text()
    assert "redis exited" in log and "started redis" in log
    assert small_stack.pid("storage") is not None
    supervisor = small_stack.pid("supervisor")
    small_stack.down(log=lambda _: None)
    assert not os.path.exists(f"/proc/{supervisor}/stat") or small_stack.pid("supervisor") is None
    assert [s.state for s in small_stack.status()] == ["stopped", "stopped", "stopped"]
