"""Supervision events: what happened to a component, recorded where a user looks for it.

Each event goes to the Python log, to the deployment's events file (`inferplane status`), into the log of every
process it is about (`inferplane logs`), and to an optional callback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from inferplane.runtime.state import StateDir

log = logging.getLogger("inferplane.runtime.supervisor")  # the name events were always logged under

EventCallback = Callable[[str, str], None]
MembersOf = Callable[[str], list[str]]  # component or unit name → the component names whose logs it belongs in


class EventRecorder:
    def __init__(self, state: StateDir, members_of: MembersOf, on_event: EventCallback | None = None) -> None:
        self.state = state
        self._members_of = members_of
        self._on_event = on_event

    def __call__(self, component: str, message: str, *, to_log: bool = True) -> None:
        log.info("%s: %s", component, message)
        try:
            self.state.append_event(component, message)
            if to_log:
                self._log_event(component, message)
        except OSError:
            pass
        if self._on_event is not None:
            self._on_event(component, message)

    def _log_event(self, component: str, message: str) -> None:
        """The event in the log of each process it is about, between that process's own lines, so `inferplane logs`
        shows why a process stopped and when it came back (kubectl shows the same in `describe pod`)."""
        line = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n".encode()
        for name in self._members_of(component):
            # O_APPEND: whole lines, even while the process writes to the same file
            with self.state.log_file(name).open("ab") as f:
                f.write(line)
