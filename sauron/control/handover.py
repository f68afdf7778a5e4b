"""What one agent's control plane hands to the next across a restart: the
session table of every source, and for PFCP the rules each session holds
(so that the next agent follows its modifications and deletions as the
last one would have). The agent keeps it on disk
(sauron.agent.saved_sessions); this module says what it holds and what of
it a new configuration may take back."""

from __future__ import annotations

from dataclasses import dataclass

from sauron.control.pfcp_learner import LearnedSession
from sauron.control.record import ControlSession


@dataclass
class ControlState:
    """Taken on the event loop, in one piece: the PFCP sessions' rows are
    the same objects in both lists (pickled together, they stay so)."""

    sessions: list[ControlSession]
    pfcp: list[LearnedSession]
    #: when it was taken
    at: float


def still_sourced(
    state: ControlState, watches_pfcp: bool, feeds: set[str]
) -> tuple[ControlState, int]:
    """The part of a saved state whose sources this configuration still
    has: PFCP sessions while N4 is watched, a feed's sessions while that
    feed (by its shown URL) is configured; and how many were left out
    (nothing would ever end them, and their rules would stay)."""
    kept = [
        s
        for s in state.sessions
        if (s.source == "pfcp" and watches_pfcp) or (s.source == "smf" and s.key[0] in feeds)
    ]
    pfcp = state.pfcp if watches_pfcp else []
    return ControlState(kept, pfcp, state.at), len(state.sessions) - len(kept)
