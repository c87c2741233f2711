"""One run, stage by stage: round data -> predict (in a worker) -> validate -> upload.

    pipeline = Pipeline(services, owner)
    run = await pipeline.execute(claimed)   # submitted, failed, skipped, dry-run; or queued again

`execute` takes a claimed run and returns it final, or queued again for its one retry after
its worker died. What goes wrong with the run itself is recorded on it (failed or skipped,
with the reason); only a LedgerError (a lost lease, the ledger down) is raised. Each state
change commits (`recorder.BatchAdvancer`) before the next side effect. Before an upload that
may repeat an earlier one, the ledger and Numerai's submissions are checked: a trigger id is
submitted at most once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.errors import AutopilotError, LedgerError, PredictorError, ValidationError
from numerai_autopilot.executor import PredictJob, PredictOutcome, WorkerDied
from numerai_autopilot.executor.predictors import PredictorSpec
from numerai_autopilot.ledger import Change, Run, RunState
from numerai_autopilot.ledger.states import PIPELINE
from numerai_autopilot.numerai import UploadTarget
from numerai_autopilot.numerai.errors import DeadlineExceeded, UploadError
from numerai_autopilot.runs.blend import Blender, describe
from numerai_autopilot.runs.fallback import benchmark_predictions, is_benchmark
from numerai_autopilot.runs.health import HealthCheck, Verdict
from numerai_autopilot.runs.held import HOLD_HINT, approved_note, kept_outcome
from numerai_autopilot.runs.locks import KeyedLocks
from numerai_autopilot.runs.recorder import BatchAdvancer
from numerai_autopilot.runs.rounddata import RoundFiles
from numerai_autopilot.runs.rounds import NO_CLOSE_TIME_S, check_still_current, run_deadline
from numerai_autopilot.runs.services import RunSkipped, Services, fallback_key, predicting_note
from numerai_autopilot.runs.uploads import early_target, numerai_submission, submission_filename
from numerai_autopilot.validation.classic import submission_csv

log = logging.getLogger(__name__)
T = TypeVar("T")

# A run whose worker died (crash, memory) is retried once: the second death is final.
MAX_ATTEMPTS = 2


class Pipeline:
    """Executes claimed runs. With `dry_run_dir`, a dry run (`Run.is_dry_run`) writes its
    validated CSV there instead of uploading; without it, a dry run (resumed after its
    process died) fails: only the process that has somewhere to write it runs one."""

    def __init__(self, services: Services, owner: str, dry_run_dir: Path | None = None) -> None:
        self._services = services
        self._owner = owner
        self._dry_run_dir = dry_run_dir
        self._rounds = services.rounds
        self._upload_locks: KeyedLocks[tuple[str, int | None]] = KeyedLocks()
        self._advancer = BatchAdvancer(services.ledger)
        self._blender = Blender(services.ledger)
        self._health = HealthCheck(services.ledger, services.config.health)

    async def flush(self) -> None:
        """Return once the state changes already made are committed (runs cancelled at
        shutdown may have left one queued)."""
        await self._advancer.flush()

    async def execute(self, run: Run) -> Run:
        """Drive `run` to a final state (or back to queued for its one retry)."""
        model = self._services.config.model(run.model_name)
        if run.is_dry_run and self._dry_run_dir is None:
            return await self._fail(run, "dry run interrupted (its process stopped); run "
                                         f"`autopilot run {run.model_name} --dry-run` again")
        try:
            return await self._stages(run, model)
        except WorkerDied as exc:
            if run.attempts < MAX_ATTEMPTS:
                await self._log(run, "warning", f"{exc}; retrying once")
                return await self._advance(run, RunState.QUEUED, error=str(exc))
            return await self._fail(run, str(exc))
        except RunSkipped as exc:
            await self._log(run, "info", str(exc))
            return await self._advance(run, RunState.SKIPPED, error=str(exc))
        except (DeadlineExceeded, UploadError) as exc:
            if isinstance(exc, UploadError) and not exc.retryable:
                return await self._fail(run, str(exc))
            hint = "" if model.late_submissions else "; set late_submissions = true to keep trying"
            return await self._fail(run, f"gave up at the round's close: {exc}{hint}")
        except LedgerError:
            raise  # the lease was lost or the ledger is down: the dispatcher logs it
        except AutopilotError as exc:
            return await self._fail(run, str(exc))
        except Exception as exc:
            # A bug of ours, not the model's: fail the run (rather than retry it forever)
            # and keep the traceback in the log.
            log.exception("run %s: unexpected error", run.id)
            return await self._fail(run, f"internal error ({type(exc).__name__}: {exc}); "
                                         "please report it with the server log")

    async def _stages(self, run: Run, model: ModelConfig) -> Run:
        if run.state is not RunState.QUEUED:
            # Claimed again after a crash or a lost lease. Earlier stages are redone quietly
            # (round data is cached; predictions were never stored), the state moves on
            # from where it was.
            await self._log(run, "warning", f"resuming run interrupted while {run.state.value}")
        # The round's close (the run's deadline) is asked for while its data downloads: the
        # webhook names the round. Until the close is known, retries stop after an hour.
        # A run that names no round (a test trigger, a webhook whose round could not be
        # read) is for the round open when it arrived: a remembered answer may predate a
        # round opened since, whose ids the submission must match.
        asked_after = run.created_at.timestamp() if run.round_number is None else None
        lookup = asyncio.ensure_future(self._rounds.get(
            model.tournament_id, at_least=run.round_number, asked_after=asked_after))
        spec = self._services.predictors.get(model.name)  # None: a blend (runs/blend.py)
        started: asyncio.Future[PredictOutcome] | None = None
        try:
            if run.round_number is None or run.state is RunState.UPLOADING:
                await asyncio.shield(lookup)  # the round's number or its close comes first
            number = run.round_number
            round_number = number if number is not None else lookup.result().number
            if run.state is RunState.UPLOADING and self._dry_run_dir is None:
                # Interrupted mid-upload: Numerai may have the submission already. Ask
                # before spending the time to download and predict again.
                deadline = run_deadline(run, model, lookup.result(), round_number)
                existing = await numerai_submission(self._services.client, run, round_number, deadline)
                if existing is not None:
                    await self._log(run, "info", f"Numerai already has submission {existing} "
                                    "from the interrupted attempt; not uploading again")
                    return await self._advance(run, RunState.SUBMITTED, submission_id=existing)
            # A run that named no round is for the one current when it arrived: recorded on
            # the run, so the watcher and later triggers of that round see it.
            learnt = round_number if run.round_number is None and not run.is_test else None
            run = await self._enter(run, RunState.DOWNLOADING, round_number=learnt)
            where: dict[str, Any] = {
                "tournament": model.tournament_id, "round_number": round_number,
                "data_version": model.data_version, "benchmarks": True, "examples": True}
            download = asyncio.ensure_future(self._services.rounddata.get(
                **where, deadline=time.time() + NO_CLOSE_TIME_S))
            planned = self._services.rounddata.files(**where)
            if (spec is not None and not run.detail.get("approved")
                    and not planned.live_path.exists()):  # it loads while the data downloads
                started = asyncio.ensure_future(self._predict(run, model, spec, planned,
                                                              download))
            files = await download
            current = await lookup
            check_still_current(current, round_number)
            deadline = run_deadline(run, model, current, round_number)
        except BaseException:
            if started is not None:
                started.cancel()
            raise
        finally:
            if not lookup.done():
                lookup.cancel()
        if spec is None or self._services.executor.config.round_file_transfer != "shared":
            self._health.prepare(model.tournament_id, files)  # judged here: build meanwhile
        # The task goes to a worker while the stage change commits (in a batch with the
        # round's other runs): predicting is no side effect; the upload waits for commits.
        started = started or asyncio.ensure_future(
            kept_outcome(self._services.ledger, run) if run.detail.get("approved")
            else self._predict(run, model, spec, files) if spec is not None
            else self._blender.blend(run, model, files.live_path, round_number, deadline))
        early = None
        try:
            said = approved_note(run) or (predicting_note(model, spec) if spec else describe(model))
            run = await self._enter(run, RunState.PREDICTING, detail={"round": round_number},
                                    log=("info", said))
            early = (None if self._dry_run_dir is not None else asyncio.ensure_future(
                early_target(self._services.client, run, model, round_number, deadline)))
            return await self._predict_and_upload(run, model, files, round_number, deadline,
                                                  early, started)
        finally:
            for future in (started, early):
                if future is not None and not future.done():
                    future.cancel()
                elif future is not None and not future.cancelled():
                    future.exception()  # retrieved: the run's outcome already says it

    async def _predict_and_upload(
        self, run: Run, model: ModelConfig, files: RoundFiles, round_number: int,
        deadline: float, early: asyncio.Future[UploadTarget | None] | None,
        started: asyncio.Future[PredictOutcome],
    ) -> Run:
        run, data, rows, timings = await self._predictions(run, model, files, started)
        checking = asyncio.ensure_future(self._health.assess(run, files, data))
        checking.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen
        # under "warn" (a test trigger's too) the verdict decides nothing: judged while it uploads
        decides = (model.on_suspect != "warn" and not run.is_test) or self._dry_run_dir is not None
        verdict = await checking if decides else None
        health = {} if verdict is None else {"health": verdict.detail()}
        if verdict is not None and verdict.suspect and self._dry_run_dir is None:
            run, data, rows, timings = await self._suspect(
                run, model, files, verdict, deadline, (data, rows, timings))
            if run.state is RunState.HELD:
                return run
        # validated on the worker: passing through validating costs no second transaction
        via = RunState.VALIDATING if run.state is RunState.PREDICTING else None
        if self._dry_run_dir is not None:
            path = self._dry_run_dir / submission_filename(model, round_number)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return await self._advance(
                run, RunState.DRY_RUN, via=via, detail={**timings, "rows": rows, **health,
                                                        "dry_run": str(path)},
                predictions=(data, rows),
                log=("info", f"dry run: wrote {rows} validated rows to {path}"))
        # kept with the stage change, before the upload: a blend reads it
        run = await self._enter(run, RunState.UPLOADING, detail={**timings, "rows": rows,
                                                                  **health}, via=via,
                                predictions=(data, rows))
        upload_started = time.perf_counter()
        target = await early if early is not None else None
        submitted = await self._upload(run, model, round_number, data, rows, deadline, target,
                                       upload_started, None if decides else checking)
        if (reasons := submitted.detail.get("health", {}).get("suspect")) and not decides:
            await self._log(submitted, "warning", f"suspect: {'; '.join(reasons)}; submitted "
                            'anyway (on_suspect = "warn")')
            if self._services.notify is not None:
                await self._services.notify(submitted)
        return submitted

    async def _predictions(
        self, run: Run, model: ModelConfig, files: RoundFiles,
        started: asyncio.Future[PredictOutcome],
    ) -> tuple[Run, bytes, int, dict[str, float]]:
        """The predictions `started` (validated on the worker); on failure the model's
        fallback's, if it has one. Returns the run, the CSV, its rows and the worker's timings."""
        try:
            return await self._validated(run, started)
        except (PredictorError, ValidationError) as exc:
            retry_left = isinstance(exc, WorkerDied) and run.attempts < MAX_ATTEMPTS
            if model.fallback is None or retry_left:
                raise
            await self._log(run, "warning", f"{exc}; using fallback {model.fallback}")
            return await self._fallback(run, model, files, str(exc))

    async def _fallback(self, run: Run, model: ModelConfig, files: RoundFiles, primary_error: str,
                        extra: dict[str, object] | None = None
                        ) -> tuple[Run, bytes, int, dict[str, float]]:
        """The model's fallback's validated predictions, instead of its own (`primary_error`
        says why), as `_predictions` returns them; the run says so and alerts."""
        assert model.fallback is not None
        if is_benchmark(model.fallback):
            predictions = await asyncio.to_thread(
                benchmark_predictions, files.benchmark_path, model.fallback, model.name
            )
            run = await self._enter(run, RunState.VALIDATING)
            data, rows = await asyncio.to_thread(
                submission_csv, predictions, files.live_path, model.name, model.tournament_id
            )
            timings: dict[str, float] = {}
        else:
            spec = self._services.predictors[fallback_key(model.name)]
            await self._log(run, "info", predicting_note(model, spec))
            run, data, rows, timings = await self._validated(
                run, self._predict(run, model, spec, files))
        run = await self._advance(run, run.state, detail={
            "fallback": model.fallback, "primary_error": primary_error, **(extra or {})})
        if self._services.notify is not None:
            await self._services.notify(run)
        return run, data, rows, timings

    async def _suspect(
        self, run: Run, model: ModelConfig, files: RoundFiles, verdict: Verdict,
        deadline: float, kept: tuple[bytes, int, dict[str, float]],
    ) -> tuple[Run, bytes, int, dict[str, float]]:
        """A suspect run, as `model.on_suspect` says: held (not uploaded, alerted; approved
        on the dashboard until `deadline`), the fallback's predictions, or `kept` (a dry run's)."""
        reasons = "; ".join(verdict.reasons)
        if model.on_suspect == "hold" and not run.is_test:
            held = await self._advance(
                run, RunState.HELD, detail={"health": verdict.detail(), "hold_until": deadline},
                predictions=kept[:2],  # what Submit anyway uploads
                via=RunState.VALIDATING if run.state is RunState.PREDICTING else None,
                log=("warning", f"suspect, held: {reasons}; {HOLD_HINT}"))
            if self._services.notify is not None:
                await self._services.notify(held)
            return (held, *kept)
        if model.on_suspect == "fallback" and not run.is_test:
            run, data, rows, timings = await self._fallback(
                run, model, files, f"suspect: {reasons}", {"health": verdict.detail()})
            return run, data, rows, timings
        await self._log(run, "warning", f"suspect: {reasons}")
        return (run, *kept)

    async def _validated(self, run: Run, prediction: Awaitable[PredictOutcome]
                         ) -> tuple[Run, bytes, int, dict[str, float]]:
        """The predictor's validated submission: the worker validates and serialises it.
        The timings: the predictor's own time, its load, the wait for a free worker, the
        validation; the worker's peak memory and the model's own (MiB)."""
        try:
            outcome = await prediction
        except ValidationError:
            await self._enter(run, RunState.VALIDATING)  # where it failed (on the worker)
            raise
        assert outcome.csv is not None  # the job asked the worker to validate
        self._health.offer(run.id, outcome.csv, outcome.figures)
        if outcome.detail:  # a blend's members (runs/blend.py)
            run = await self._advance(run, run.state, detail=outcome.detail)
        if not outcome.worker:  # kept when held (`held.kept_outcome`): nothing was timed
            return run, outcome.csv, outcome.rows, {}
        timings = {"compute_s": outcome.compute_s, "load_s": outcome.load_s, "cpu_s": outcome.cpu_s,
                   "threads": outcome.threads, "queued_s": outcome.queued_s,
                   "validate_s": outcome.validate_s, "data_wait_s": outcome.data_wait_s,
                   "peak_mb": outcome.peak_rss / 2**20, "model_mb": outcome.model_size / 2**20}
        ahead = {k: True for k in ("loaded_ahead", "cores_shared") if getattr(outcome, k)}
        return run, outcome.csv, outcome.rows, ahead | {k: round(v, 6) for k, v in
                                                        timings.items() if v is not None}

    async def _predict(self, run: Run, model: ModelConfig, spec: PredictorSpec,
                       files: RoundFiles, ready: Awaitable[object] | None = None
                       ) -> PredictOutcome:
        """The model's validated predictions; `ready`: `files`' download, if not done."""
        job = PredictJob(
            run_id=run.id, model_name=model.name, predictor=spec, live_path=files.live_path,
            benchmark_path=files.benchmark_path, example_path=files.example_path,
            health=True,  # its figures computed on the worker (runs/health.py)
            timeout_s=model.timeout, memory_limit_bytes=model.memory,
            validate_for=model.tournament_id, environment=model.environment,
        )
        return await self._services.executor.predict(job, ready)

    async def _upload(
        self, run: Run, model: ModelConfig, round_number: int, data: bytes, rows: int,
        deadline: float, target: UploadTarget | None, started: float,
        checking: asyncio.Future[Verdict | None] | None = None,
    ) -> Run:
        """Upload and mark the run submitted, both under its (model, round)'s lock: another
        run of the round checks the ledger only once this one's submission is committed.
        `checking`: its health verdict, judged meanwhile, kept with the submitted state."""
        model_id = run.model_id
        async with self._upload_locks.hold((model_id, None if run.is_test else round_number)):
            if not run.is_test and not model.resubmit:
                earlier = await asyncio.to_thread(
                    self._services.ledger.submitted_run, model_id, round_number)
                if earlier is not None and earlier.id != run.id:
                    raise RunSkipped(f"round {round_number} already submitted by run "
                                     f"{earlier.id}; set resubmit = true to submit again")
            # an earlier attempt may have uploaded before dying
            existing = (await numerai_submission(self._services.client, run, round_number, deadline)
                        if run.attempts > 1 else None)
            if existing is not None:
                await self._log(run, "info", f"Numerai already has submission {existing} "
                                "for this trigger; not uploading again")
            submission_id = existing or await self._services.client.upload_predictions(
                model_id, data, submission_filename(model, round_number), model.tournament_id,
                run.numerai_trigger_id, deadline=deadline, target=target)
            upload_s = round(time.perf_counter() - started, 3)
            health = await self._health.settled(run, checking)
            return await self._advance(
                run, RunState.SUBMITTED, submission_id=submission_id,
                detail={"upload_s": upload_s, **health},
                log=("info", f"submitted {rows} rows as submission {submission_id}"))

    async def _enter(self, run: Run, state: RunState, *, log: tuple[str, str] | None = None,
                     **change: Any) -> Run:
        """Advance to `state` unless a resumed run is already there or beyond; `log` is
        written either way; `change`: `_advance`'s other arguments."""
        if PIPELINE.index(run.state) >= PIPELINE.index(state):
            if log is not None:
                await self._log(run, *log)
            return run
        return await self._advance(run, state, log=log, **change)

    async def _advance(self, run: Run, state: RunState, *, log: tuple[str, str] | None = None,
                       error: str | None = None, submission_id: str | None = None,
                       detail: dict[str, object] | None = None, via: RunState | None = None,
                       round_number: int | None = None,
                       predictions: tuple[bytes, int] | None = None) -> Run:
        """Move the run on (and write `log` with it, in one transaction; with the changes
        of other runs made in the same turn of the loop); `round_number`: the round of a
        run that had none; `predictions`: its CSV and rows, kept (`Ledger.advance`)."""
        if log is not None:
            self._say(run, *log)
        after = await self._advancer.advance(Change(
            run.id, state, owner=self._owner, error=error, submission_id=submission_id,
            detail=detail, log=log, via=via, round_number=round_number,
            predictions=predictions))
        if self._services.on_change is not None:  # committed above; the hook only schedules work
            self._services.on_change(run, after)
        return after

    async def _fail(self, run: Run, message: str) -> Run:
        await self._log(run, "error", message)
        failed = await self._advance(run, RunState.FAILED, error=message)
        if self._services.notify is not None:
            await self._services.notify(failed)
        return failed

    async def _log(self, run: Run, level: str, message: str) -> None:
        self._say(run, level, message)
        await asyncio.to_thread(self._services.ledger.log, run.id, level, message)

    @staticmethod
    def _say(run: Run, level: str, message: str) -> None:
        """The server log's copy of a run's log line."""
        getattr(log, level)("run %s (%s): %s", run.id, run.model_name, message, extra={
            "run": run.id, "model": run.model_name, "round": run.round_number})
