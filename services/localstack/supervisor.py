"""Restarts a component of the local stack that exits, as Kubernetes restarts a pod.

`make up` starts it last (`python -m services.localstack.supervisor <settings file>`),
in its own process group with its PID recorded like every component's; `make down`
stops it first, so nothing comes back while the stack stops. It checks every
component once a second; one that is gone is started again with the same command,
environment and log, after a backoff that doubles (1 s up to 30 s) each time it dies
within a minute of starting. Every restart is logged to <run>/logs/supervisor.log.
"""

import argparse
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from services.localstack.config import StackSettings
from services.localstack.launcher import Stack, StackError

logger = logging.getLogger("supervisor")
CHECK_INTERVAL_S = 1.0
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0  # up this long: the next exit starts the backoff over


@dataclass
class _Record:
    backoff_s: float = FIRST_BACKOFF_S
    started: float = 0.0
    due: float | None = None  # when it is to be started again


class Supervisor:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.records = {c.name: _Record(started=time.monotonic()) for c in stack.components}
        self._stop = False

    def stop(self, *_) -> None:
        self._stop = True

    def run(self) -> None:
        while not self._stop:
            self.check(time.monotonic())
            _reap_children()
            time.sleep(CHECK_INTERVAL_S)

    def check(self, now: float) -> None:
        for component in self.stack.components:
            record = self.records[component.name]
            if self.stack.pid(component.name) is not None:
                if now - record.started > STABLE_AFTER_S:
                    record.backoff_s = FIRST_BACKOFF_S
                continue
            if record.due is None:
                record.due = now + record.backoff_s
                logger.warning("%s exited (pid file %s): restarting in %.0fs\n%s", component.name,
                               self.stack.pid_file(component.name), record.backoff_s, self.stack.tail(component.name, 5))
                continue
            if now < record.due:
                continue
            try:
                self.stack.start(component, log=logger.info)
            except (StackError, OSError) as error:
                logger.error("%s could not be restarted: %s", component.name, error)
            record.started, record.due = now, None
            record.backoff_s = min(MAX_BACKOFF_S, record.backoff_s * 2)


def _reap_children() -> None:
    """Components this process restarted are its children: collect the ones that exit."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("settings", type=Path, help="the stack's settings, as JSON (written by `make up`)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    saved = json.loads(args.settings.read_text())
    stack = Stack(StackSettings.model_validate(saved["settings"]), only=saved["components"])
    supervisor = Supervisor(stack)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    logger.info("supervising %s", ", ".join(c.name for c in stack.components))
    supervisor.run()
    logger.info("stopped")


if __name__ == "__main__":
    main()
