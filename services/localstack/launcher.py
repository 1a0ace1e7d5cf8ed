"""Starts, stops and reports the local stack's processes.

Each component runs in its own session (process group) with its log under
<run>/logs and its PID, with the process's start time, under <run>/pids. Stop
signals exactly those process groups, and only while the recorded PID still
belongs to the process that was started (a reused PID is left alone). Once all
are up, a supervisor (services/localstack/supervisor.py) restarts any that exits.
"""

import json
import os
import sys
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from services.localstack.components import Component, components
from services.localstack.config import StackSettings


class StackError(RuntimeError):
    pass


@dataclass
class Status:
    name: str
    pid: int | None
    state: str  # healthy | starting | unhealthy | stopped | dead
    endpoints: dict[str, str]


def _process_start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None once it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


SUPERVISOR = "supervisor"


class Stack:
    def __init__(self, settings: StackSettings | None = None, only: list[str] | None = None):
        self.settings = settings or StackSettings()
        self.run = self.settings.run_dir
        self.components = [c for c in components(self.settings) if only is None or c.name in only]

    # -- process records -------------------------------------------------
    def pid_file(self, name: str) -> Path:
        return self.run / "pids" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run / "logs" / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The component's PID if the recorded process is still the one we started."""
        try:
            pid_text, started = self.pid_file(name).read_text().split()
        except (OSError, ValueError):
            return None
        pid = int(pid_text)
        return pid if _process_start_time(pid) == started else None

    # -- start -----------------------------------------------------------
    def up(self, log=print, supervise: bool = True) -> float:
        """Starts every component not already running and waits until all are healthy;
        then the supervisor, which restarts any that exits."""
        began = time.monotonic()
        for sub in ("logs", "pids"):
            (self.run / sub).mkdir(parents=True, exist_ok=True)
        self._ensure_model(log)
        for component in self.components:
            if self.pid(component.name) is None:
                self.start(component, log)
            self._wait_healthy(component, log)
            component.provision()
        if supervise and self.pid(SUPERVISOR) is None:
            self._start_supervisor(log)
        return time.monotonic() - began

    def _start_supervisor(self, log) -> None:
        settings_file = self.run / "stack.json"
        settings_file.write_text(json.dumps({
            "settings": json.loads(self.settings.model_dump_json()), "components": [c.name for c in self.components]}))
        self._spawn(SUPERVISOR, [sys.executable, "-m", "services.localstack.supervisor", str(settings_file)],
                    dict(os.environ), log)

    def wait_healthy(self, name: str) -> None:
        """Waits until the named component is healthy again (say, after the supervisor restarted it)."""
        self._wait_healthy(next(c for c in self.components if c.name == name), print)

    def _ensure_model(self, log) -> None:
        model_dir = self.settings.model_dir
        if (model_dir / "config.json").is_file():
            return
        if self.settings.model_is_local:
            raise StackError(f"VIZSEARCH_MODEL={self.settings.model} has no Hugging Face CLIP checkpoint (config.json)")
        from model.fetch import fetch

        log(f"fetching {self.settings.model} into {model_dir} ...")
        fetch(self.settings.model, model_dir)

    def start(self, component: Component, log) -> None:
        for endpoint in component.endpoints.values():
            port = int(endpoint.rsplit(":", 1)[1].split("/")[0])
            if _port_taken(port):
                raise StackError(f"{component.name}: port {port} is already taken by another process")
        component.prepare()
        self._spawn(component.name, component.command, dict(os.environ, **component.env), log)

    def _spawn(self, name: str, command: list[str], env: dict[str, str], log) -> None:
        with open(self.log_file(name), "ab") as log_stream:
            process = subprocess.Popen(command, stdout=log_stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True)
        self.pid_file(name).write_text(f"{process.pid} {_process_start_time(process.pid)}\n")
        log(f"started {name} (pid {process.pid}), log {self.log_file(name)}")

    def _wait_healthy(self, component: Component, log) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if component.healthy():
                return
            if self.pid(component.name) is None:
                raise StackError(f"{component.name} exited while starting:\n{self.tail(component.name)}")
            time.sleep(0.5)
        raise StackError(
            f"{component.name} not healthy after {self.settings.start_timeout_s:.0f}s:\n{self.tail(component.name)}"
        )

    def tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- stop ------------------------------------------------------------
    def down(self, log=print) -> None:
        """Stops the supervisor, then every recorded component, in reverse start order."""
        for name in (SUPERVISOR, *(c.name for c in reversed(self.components))):
            pid = self.pid(name)
            if pid is not None:
                self._stop(name, pid, log)
            self.pid_file(name).unlink(missing_ok=True)

    def _stop(self, name: str, pid: int, log) -> None:
        os.killpg(pid, signal.SIGTERM)
        if not _wait_group_gone(pid, self.settings.stop_grace_s):
            os.killpg(pid, signal.SIGKILL)
            _wait_group_gone(pid, timeout_s=5)
            log(f"stopped {name} (pid {pid}) with SIGKILL after {self.settings.stop_grace_s:.0f}s")
        else:
            log(f"stopped {name} (pid {pid})")
        try:
            os.waitpid(pid, 0)  # reap it if this process started it (the tests do)
        except ChildProcessError:
            pass

    # -- report ----------------------------------------------------------
    def status(self) -> list[Status]:
        report = []
        for component in self.components:
            pid = self.pid(component.name)
            if pid is None:
                state = "dead" if self.pid_file(component.name).exists() else "stopped"
            else:
                state = "healthy" if component.healthy() else "unhealthy"
            report.append(Status(component.name, pid, state, component.endpoints))
        supervisor = self.pid(SUPERVISOR)
        report.append(Status(SUPERVISOR, supervisor, "running" if supervisor else "stopped", {}))
        return report


def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts as a group member; it is not running.
    try:
        state = Path(f"/proc/{pgid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state != "Z" or any(_group_members(pgid))


def _group_members(pgid: int):
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pgid:
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                yield int(entry.name)


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
