"""An environment's requirements file as pip reads it: its lines, its nested files, a digest.

    files = read_requirements(Path("envs/legacy.txt"), shown="envs/legacy.txt")
    files.digest                      # sha256 of every file's text, nested -r/-c files too
    files.names()                     # {"lightgbm", "autopilot-probe"}: what it asks for
    refuse_held_conflicts(files, {"distributed": "2026.8.0"})

Only what we need is parsed: requirement lines (with `packaging`), `-r`/`-c` files (followed,
relative to the file naming them, as pip does). Option lines (`--find-links`, `--no-index`,
`-e`) and paths or URLs of wheels are left to the installer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from numerai_autopilot.errors import EnvironmentBuildError

# `-r FILE`, `--requirement FILE`, `--requirement=FILE`, `-rFILE` (and the same for -c).
_NESTED = re.compile(r"^(?:-(?P<short>[rc])\s*|--(?P<long>requirement|constraint)(?:\s+|=))"
                     r"(?P<path>\S+)$")
_COMMENT = re.compile(r"(^|\s+)#.*$")
_OPTIONS = re.compile(r"\s+--?[a-z].*$")  # per-requirement options: `foo==1 --hash=...`


@dataclass(frozen=True)
class RequirementLine:
    """One requirement: where it is written (`shown` file name, 1-based line) and what."""

    shown: str
    number: int
    text: str
    requirement: Requirement
    constraint: bool  # from a `-c` file: limits versions, installs nothing


@dataclass(frozen=True)
class RequirementsFiles:
    """The requirement lines of a file and the files it nests, and their `digest`."""

    lines: tuple[RequirementLine, ...]
    digest: str

    def names(self) -> set[str]:
        """The canonical names of the packages asked for (not those only constrained)."""
        return {canonicalize_name(line.requirement.name) for line in self.lines
                if not line.constraint and _applies(line.requirement)}


def read_requirements(path: Path, *, shown: str) -> RequirementsFiles:
    """Read the requirements file at `path` (named `shown` in messages) and the files it
    nests with `-r`/`-c`.

    :raises EnvironmentBuildError: a file is missing or unreadable; the message names it and
        the line that nests it.
    """
    texts: list[bytes] = []
    lines = tuple(_read(path, shown, constraint=False, texts=texts, seen=set()))
    return RequirementsFiles(lines, hashlib.sha256(b"".join(texts)).hexdigest())


def refuse_held_conflicts(files: RequirementsFiles, held: Mapping[str, str]) -> None:
    """Refuse requirements that exclude the server's version of a package every Dask
    process must share (`held`: canonical name -> the server's version).

    :raises EnvironmentBuildError: naming each package, its line and the server's version.
    """
    problems = []
    for line in files.lines:
        name = canonicalize_name(line.requirement.name)
        version = held.get(name)
        if version is None or not _applies(line.requirement):
            continue
        if line.requirement.specifier and not line.requirement.specifier.contains(
                version, prereleases=True):
            problems.append(f"{line.shown} line {line.number} asks for {line.text!r}, but the "
                            f"server runs {name} {version}")
    if problems:
        raise EnvironmentBuildError(
            "; ".join(problems) + " (every Dask worker must run the server's dask, "
            "distributed, cloudpickle and msgpack); remove those pins or match the server's "
            "versions")


def _read(path: Path, shown: str, *, constraint: bool, texts: list[bytes],
          seen: set[Path]) -> Iterator[RequirementLine]:
    resolved = path.resolve()
    if resolved in seen:  # a file nested twice (or in a loop) is read once
        return
    seen.add(resolved)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnvironmentBuildError(f"{shown} does not exist ({path}); write the "
                                    "environment's requirements there, one a line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvironmentBuildError(f"cannot read {shown} ({path}): {exc}") from exc
    texts.append(f"{shown}\0{text}\0".encode())
    for number, line in _logical_lines(text):
        nested = _NESTED.match(line)
        if nested:
            target = nested["path"]
            if "://" in target:  # a URL: pip fetches it; we cannot follow or hash it
                continue
            child = Path(target) if Path(target).is_absolute() else path.parent / target
            is_constraint = constraint or (nested["short"] or nested["long"])[0] == "c"
            try:
                yield from _read(child, f"{Path(shown).parent / target}", seen=seen,
                                 constraint=is_constraint, texts=texts)
            except EnvironmentBuildError as exc:
                raise EnvironmentBuildError(f"{exc} (named on {shown} line {number})") from None
            continue
        if line.startswith("-"):
            continue
        spec = _OPTIONS.sub("", line)
        try:
            requirement = Requirement(spec)
        except InvalidRequirement:  # a path or URL of a wheel or a project: the installer's
            continue
        yield RequirementLine(shown, number, spec, requirement, constraint)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with comments removed and `\\` continuations joined."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = _COMMENT.sub("", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined, pending = (pending + line).strip(), ""
        if joined:
            yield start, joined
    if pending.strip():
        yield start, pending.strip()


def _applies(requirement: Requirement) -> bool:
    """Whether `requirement`'s marker (if any) holds for this interpreter."""
    return requirement.marker is None or requirement.marker.evaluate()
