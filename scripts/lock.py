"""Write requirements.lock: dunflow's runtime dependencies, and theirs, pinned to the versions
installed in this virtualenv (the ones the tests ran with).

    .venv/bin/python scripts/lock.py > requirements.lock
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def closure(requirements: list[str]) -> dict[str, str]:
    pinned: dict[str, str] = {}
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in pinned:
            continue
        pinned[name] = metadata.version(name)
        for text in metadata.requires(name) or []:
            needed = Requirement(text)
            wanted = [""] + sorted(requirement.extras)  # plain needs, and those of the extras asked for
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in wanted):
                needed.marker = None
                todo.append(needed)
    return pinned


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = closure(project["dependencies"])
    print(f"# dunflow's runtime dependencies, pinned; made by scripts/lock.py (Python {sys.version_info.major}."
          f"{sys.version_info.minor})")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")


if __name__ == "__main__":
    main()
