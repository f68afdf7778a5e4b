"""`sauron detach [--config FILE | --all]`: removes a data path that no agent
runs any more (left counting by `--keep-datapath`, a crash or SIGKILL): its
links, so the programs leave their hooks, its pins and the agent's saved
reading and sessions. A data path an agent still runs is left alone and named."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sauron.agent.datapath import LINKS, lock_holder
from sauron.bpf.build import remove_tree
from sauron.bpf.links import Links, pinned_links
from sauron.bpf.pinned import PIN_ROOT, builds_in


@dataclass
class PinnedDataPath:
    """One agent's pin folder as found on the node."""

    folder: Path
    builds: list[str]
    #: "n3 tcx-ingress (sauron_n3_ingress_tc)", ...
    links: list[str]
    #: the pid of the agent running it; None: none does
    agent: int | None

    def describe(self) -> str:
        who = f"run by the agent of pid {self.agent}" if self.agent else "no agent runs it"
        links = ", ".join(self.links) or "no link"
        return f"{self.folder}: {who}; builds {', '.join(self.builds) or 'none'}; {links}"


@dataclass
class Detached:
    removed: list[PinnedDataPath] = field(default_factory=list)
    running: list[PinnedDataPath] = field(default_factory=list)


def state_folder(state_dir: Path, folder: Path) -> Path:
    return state_dir / folder.name


def pinned_data_paths(state_dir: Path, root: Path = PIN_ROOT) -> list[PinnedDataPath]:
    """Every agent's pin folder under `root`."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        links = [
            f"{link.ifname} {link.hook} ({link.prog_name or 'program ' + str(link.info.prog_id)})"
            for link in pinned_links(folder / LINKS)
        ]
        found.append(
            PinnedDataPath(
                folder,
                builds_in(folder),
                links,
                lock_holder(state_folder(state_dir, folder)),
            )
        )
    return found


def detach(folders: list[Path], state_dir: Path) -> Detached:
    """Detaches and removes each data path no agent runs."""
    done = Detached()
    for found in pinned_data_paths(state_dir):
        if found.folder not in folders:
            continue
        if found.agent is not None:
            done.running.append(found)
            continue
        links = Links(pin_dir=found.folder / LINKS)
        links.adopt()
        links.detach_all()
        remove_tree(found.folder)
        remove_tree(state_folder(state_dir, found.folder))
        done.removed.append(found)
    return done
