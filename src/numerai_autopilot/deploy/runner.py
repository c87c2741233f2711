"""Run external commands (gcloud) as argument lists, never through a shell.

Secret values go to a command's standard input, never onto its command line, so they show
in no process list and no `--dry-run` output.

    runner = Runner(dry_run=False, echo=print)
    runner.run(["gcloud", "secrets", "versions", "add", "k", "--data-file=-"], stdin=b"value")
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

from numerai_autopilot.errors import AutopilotError


class CommandError(AutopilotError):
    """An external command failed or is missing; the message names it and its output."""


class Runner:
    """Runs commands, or with `dry_run` only prints them (and runs none)."""

    def __init__(self, *, dry_run: bool, echo: Callable[[str], None],
                 timeout_s: float = 1800.0) -> None:
        self.dry_run = dry_run
        self._echo = echo
        self._timeout = timeout_s

    def show(self, args: Sequence[str], note: str = "") -> None:
        """Echo `args` as a shell line (`$ gcloud ...`), with `note` as a comment."""
        self._echo(f"$ {shlex.join(args)}" + (f"    # {note}" if note else ""))

    def run(self, args: Sequence[str], *, stdin: bytes | None = None, check: bool = True,
            capture: bool = False, quiet: bool = False,
            note: str = "") -> subprocess.CompletedProcess[str]:
        """Run `args` (or only show them, when dry); the result's `stdout` is "" unless captured.

        :param stdin: bytes for the command's standard input (secrets go here); without
            it, stdin is empty so the command never waits on a prompt.
        :param capture: keep standard output in the result (else it goes to the terminal).
        :param quiet: neither show the command nor print its output.
        :raises CommandError: the command is not installed, took longer than the runner's
            timeout, or (with `check`) exited non-zero; the message carries its stderr.
        """
        if not quiet or self.dry_run:
            self.show(args, note)
        if self.dry_run:
            return subprocess.CompletedProcess(list(args), 0, "")
        if shutil.which(args[0]) is None:
            raise CommandError(
                f"{args[0]} not found on PATH; install the Google Cloud SDK "
                "(https://cloud.google.com/sdk/docs/install) and run `gcloud auth login`"
            )
        try:
            feed: dict[str, Any] = (
                {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
            )
            done = subprocess.run(
                list(args), **feed, stdout=subprocess.PIPE if capture or quiet else None,
                stderr=subprocess.PIPE if quiet else None, timeout=self._timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandError(f"`{shlex.join(args[:4])} ...` took over {self._timeout:g} s") from exc
        out = (done.stdout or b"").decode(errors="replace")
        if check and done.returncode != 0:
            detail = (done.stderr or b"").decode(errors="replace").strip()[-2000:]
            raise CommandError(
                f"`{shlex.join(args)}` failed with exit code {done.returncode}"
                + (f": {detail}" if detail else "")
            )
        return subprocess.CompletedProcess(list(args), done.returncode, out)

    def exists(self, args: Sequence[str]) -> bool:
        """Run a `describe`-style command quietly: True when it succeeds."""
        if self.dry_run:
            self.show(args, "if this fails, the next command creates it")
            return False
        return self.run(args, check=False, quiet=True).returncode == 0
