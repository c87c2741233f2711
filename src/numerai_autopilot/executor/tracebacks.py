"""A predictor's exception as the one message a user reads: their frames first."""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path


def raised_message(model_name: str, exc: BaseException, caller: str) -> str:
    """`exc` as a run's error: the exception, then the traceback's frames in the user's own
    files, with the frames in libraries (site-packages, the standard library) folded into
    one line; frames of `caller` (the file that called the predictor) are left out.

    The user reads their own code first; the library frames only say where it went next.
    """
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename != caller][-_MAX_FRAMES:]
    lines = [f"model {model_name!r}: predictor raised {type(exc).__name__}: {exc}"]
    folded: dict[str, int] = {}
    for frame in frames:
        library = _library_of(frame.filename)
        if library is not None:
            folded[library] = folded.get(library, 0) + 1
            continue
        lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line}")
    if folded:
        lines.append("  (then " + ", ".join(f"{n} frame{'s' if n > 1 else ''} in {name}"
                                           for name, n in folded.items()) + ")")
    return "\n".join(lines)


_MAX_FRAMES = 30


def _library_of(filename: str) -> str | None:
    """The installed package (or "the standard library") a frame's file belongs to; None
    for the user's own code."""
    path = Path(filename)
    if "site-packages" in path.parts or "dist-packages" in path.parts:
        where = max(i for i, part in enumerate(path.parts)
                    if part in ("site-packages", "dist-packages"))
        return path.parts[where + 1] if where + 1 < len(path.parts) else "site-packages"
    if filename.startswith("<frozen") or path.is_relative_to(_STDLIB):
        return "the standard library"
    return None


_STDLIB = Path(sysconfig.get_paths()["stdlib"])
