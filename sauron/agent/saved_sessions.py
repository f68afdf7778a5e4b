"""The sessions the agent knew, kept across its restarts.

The data path counts on while no agent runs, and the rules the agent wrote
for the sessions it learned (from PFCP or an SMF feed) stay in its maps. A
new agent that did not know those sessions would remove their rules with
every rule the catalog does not hold, and their traffic would fall back to
the catalog's ranges until each session was learned again. So the control
plane's state (sauron.control.handover: the session table, and the rules
each PFCP session holds) is saved whenever it changed, at most once an
interval and at stop (written whole, then renamed over the last), and the
next agent starts from it.

The file is the agent's own (sauron.agent.state_file).
"""

from __future__ import annotations

from pathlib import Path

from sauron.agent.state_file import StateFile
from sauron.control.handover import ControlState

#: what the file starts with; a change of the state's shape changes it
FORMAT = "sauron-control-state-1"


class SessionFile:
    def __init__(self, path: Path) -> None:
        self.file = StateFile(path, FORMAT)

    def save(self, state: ControlState) -> None:
        """Keeps the state in place of the last."""
        self.file.save(state)

    def load(self) -> ControlState | None:
        """The last agent's state; None (and why, logged) when there is none
        to start from."""
        return self.file.load(ControlState)

    def remove(self) -> None:
        self.file.remove()
