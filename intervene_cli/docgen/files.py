"""Which files under docs/ are generated, and how: a whole file, or the part of a hand-written
file between `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->`. `stale()` is
the check the CLI and the tests share; `write()` is what `intervene docs generate` does."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.settings import SOURCE_ROOT

DOCS_DIR = SOURCE_ROOT / "docs"
FIX = "run `intervene docs generate` and commit the result"


class DocsError(Exception):
    """A generated file that cannot be brought up to date (its markers are gone)."""


@dataclass(frozen=True)
class Target:
    name: str  # the file, relative to the docs directory
    render: Callable[[], str]
    region: str | None = None  # None: the whole file is generated

    def markers(self) -> tuple[str, str]:
        return f"<!-- BEGIN GENERATED: {self.region} -->", f"<!-- END GENERATED: {self.region} -->"

    def expected(self, current: str | None) -> str:
        """What the file should hold, given what it holds now (a region keeps the prose)."""
        if self.region is None:
            return self.render()
        begin, end = self.markers()
        pattern = re.compile(f"{re.escape(begin)}\n.*?{re.escape(end)}", re.DOTALL)
        if current is None or len(pattern.findall(current)) != 1:
            raise DocsError(
                f"{self.name} must hold exactly one {begin} ... {end} pair, each marker on a"
                " line of its own"
            )
        return pattern.sub(lambda _: f"{begin}\n{self.render()}{end}", current)


def targets() -> list[Target]:
    # imported here: the playbooks renderer imports the registry, and with it Prefect
    from intervene_cli.docgen.lifecycle import render_transitions
    from intervene_cli.docgen.playbooks import render_playbooks
    from intervene_cli.docgen.settings import render_settings

    return [
        Target("playbooks.md", render_playbooks),
        Target("operations.md", render_settings, region="settings"),
        Target("interventions.md", render_transitions, region="transitions"),
    ]


def _shown(path: Path) -> str:
    """A path as the person running the command would type it."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def stale(docs_dir: Path = DOCS_DIR) -> list[str]:
    """One line per generated file that differs from what `generate` would write."""
    problems = []
    for target in targets():
        path = docs_dir.absolute() / target.name
        current = _read(path)
        try:
            wanted = target.expected(current)
        except DocsError as exc:
            problems.append(f"{_shown(path)}: {exc}")
            continue
        if current is None:
            problems.append(f"{_shown(path)}: missing")
        elif current != wanted:
            what = f"the generated {target.region!r} section" if target.region else "it"
            problems.append(f"{_shown(path)}: stale ({what} differs from what would be generated)")
    return problems


def check_message(problems: list[str]) -> str:
    return "\n".join(["Generated docs are out of date:", *problems, f"Fix: {FIX}."])


def write(docs_dir: Path = DOCS_DIR) -> list[Path]:
    """Bring every generated file up to date; return those that changed. Everything is
    rendered before anything is written, so a file without its markers changes nothing."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    planned = []
    for target in targets():
        path = docs_dir / target.name
        current = _read(path)
        planned.append((path, current, target.expected(current)))
    for path, current, wanted in planned:
        if wanted != current:
            path.write_text(wanted, encoding="utf-8")
    return [path for path, current, wanted in planned if wanted != current]
