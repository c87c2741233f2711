"""Run external commands (gcloud, litestream) as argument lists, never through a shell.

Secret values go to a command's standard input, never onto its command line, so they show
in no process list and no `--dry-run` output.

    runner = Runner(dry_run=False, echo=print)
    runner.run(["gcloud", "secrets", "versions", "add", "k", "--data-file=-"], stdin=b"value")
    runner.run(["gcloud", "run", "deploy", ...], tee=True).stderr   # shown, and kept to read
    runner.run_until_propagated(["gcloud", "projects", "add-iam-policy-binding", ...])
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from numerai_autopilot.errors import AutopilotError

# What IAM and gcloud say about an account created moments ago that has not propagated yet:
# `Service account X does not exist.` (a binding), `Build service account X does not exist.`
# (`gcloud run deploy --source`), `... it may take a few minutes for the service account to
# become fully available`.
NOT_PROPAGATED = re.compile(r"service account \S+ does not exist|may take a few minutes for "
                            r"the service account", re.IGNORECASE)
# Seconds between tries of a command IAM has not caught up with: ~2 minutes in all, within
# the "usually 2 minutes" IAM gives for a change to take effect.
PROPAGATION_DELAYS = (2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


class CommandError(AutopilotError):
    """An external command failed or is missing; the message names it and its output."""


class Runner:
    """Runs commands, or with `dry_run` only prints them (and runs none).

    :param echo: where each command line (`$ gcloud ...`) and notes are printed.
    :param timeout_s: the longest any one command may take (a source deploy builds an image).
    :param sleep: waits between tries of `run_until_propagated` (a test passes a fast one).
    """

    def __init__(self, *, dry_run: bool, echo: Callable[[str], None],
                 timeout_s: float = 1800.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.dry_run = dry_run
        self._echo = echo
        self._timeout = timeout_s
        self._sleep = sleep

    def show(self, args: Sequence[str], note: str = "") -> None:
        """Echo `args` as a shell line (`$ gcloud ...`), with `note` as a comment."""
        self._echo(f"$ {shlex.join(args)}" + (f"    # {note}" if note else ""))

    def note(self, text: str) -> None:
        """Echo a line of explanation between commands."""
        self._echo(text)

    def run(self, args: Sequence[str], *, stdin: bytes | None = None, check: bool = True,
            capture: bool = False, quiet: bool = False, tee: bool = False,
            note: str = "") -> subprocess.CompletedProcess[str]:
        """Run `args` (or only show them, when dry).

        :param stdin: bytes for the command's standard input (secrets go here); without
            it, stdin is empty so the command never waits on a prompt.
        :param capture: keep standard output in the result (else it goes to the terminal).
        :param quiet: neither show the command nor print its output.
        :param tee: print standard error as it comes and keep it in the result's `stderr`
            (gcloud reports some failures there and still exits 0).
        :returns: the result; `stdout` and `stderr` are "" unless captured, quiet or tee'd.
        :raises CommandError: the command is not installed, took longer than the runner's
            timeout, or (with `check`) exited non-zero; the message carries its stderr.
        """
        if not quiet or self.dry_run:
            self.show(args, note)
        if self.dry_run:
            return subprocess.CompletedProcess(list(args), 0, "", "")
        if shutil.which(args[0]) is None:
            raise CommandError(
                f"{args[0]} not found on PATH; install the Google Cloud SDK "
                "(https://cloud.google.com/sdk/docs/install) and run `gcloud auth login`"
            )
        piped = subprocess.PIPE
        try:
            process = subprocess.Popen(
                list(args), stdin=piped if stdin is not None else subprocess.DEVNULL,
                stdout=piped if capture or quiet else None,
                stderr=piped if quiet or tee else None,
            )
        except OSError as exc:
            raise CommandError(f"cannot start {args[0]}: {exc.strerror}") from exc
        err_lines: list[bytes] = []
        reader = None
        if tee and process.stderr is not None:
            # The thread reads standard error; communicate() handles only stdin and stdout.
            stream, process.stderr = process.stderr, None
            reader = threading.Thread(target=_tee, args=(stream, err_lines), daemon=True)
            reader.start()
        try:
            out, err = process.communicate(stdin, timeout=self._timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise CommandError(
                f"`{shlex.join(args[:4])} ...` took over {self._timeout:g} s") from exc
        if reader is not None:
            reader.join()
            err = b"".join(err_lines)
        stderr = (err or b"").decode(errors="replace")
        if check and process.returncode != 0:
            detail = stderr.strip()[-2000:]
            raise CommandError(
                f"`{shlex.join(args)}` failed with exit code {process.returncode}"
                + (f": {detail}" if detail and not tee else " (its output is above)" if tee else "")
            )
        return subprocess.CompletedProcess(list(args), process.returncode,
                                           (out or b"").decode(errors="replace"), stderr)

    def run_until_propagated(self, args: Sequence[str], *,
                             capture: bool = False) -> subprocess.CompletedProcess[str]:
        """`run(args, tee=True, capture=capture)`, tried again with backoff (~2 minutes in all)
        while it fails because a service account created moments ago has not propagated
        through IAM yet.

        :raises CommandError: any other failure at once, or still failing after the last try.
        """
        for delay in (*PROPAGATION_DELAYS, None):
            done = self.run(args, tee=True, check=False, capture=capture)
            if done.returncode == 0:
                return done
            if delay is None or not NOT_PROPAGATED.search(done.stderr):
                raise CommandError(
                    f"`{shlex.join(args)}` failed with exit code {done.returncode} (its output "
                    "is above)" + ("; the service account it names still does not exist "
                                   "after ~2 minutes: if `--setup` created it, IAM has not "
                                   "propagated it yet (run the deploy again later), else "
                                   "deploy once with --setup" if delay is None else "")
                )
            self.note(f"  IAM has not propagated the new service account yet; "
                      f"trying again in {delay:g} s")
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def exists(self, args: Sequence[str]) -> bool:
        """Run a `describe`-style command quietly: True when it succeeds."""
        if self.dry_run:
            self.show(args, "if this fails, the next command creates it")
            return False
        return self.run(args, check=False, quiet=True).returncode == 0


def _tee(stream: IO[bytes], into: list[bytes]) -> None:
    for line in iter(stream.readline, b""):
        into.append(line)
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()
