"""Predictor references, the call contract, and loading (loading runs only in workers).

A predictor reference is one of three kinds::

    "my_models.alpha:predict"      an importable module and a function in it
    "models/alpha.py:predict"      a Python file (relative to the config's directory)
    "models/alpha.pkl"             a Numerai Model Upload: a cloudpickled ``predict``

``parse_predictor`` only checks the reference and stats the file: it never imports or
unpickles anything, so the server can call it without running user code.
``load_predictor`` imports / unpickles and is meant for worker processes.

Security: a pickle *is* code. Unpickling one runs whatever its author put in it, with this
process's rights. Pickles are therefore loaded only from the directories you configure
(``executor.pickle_dirs``, by default the config's directory); treat those directories like
source.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias

from numerai_autopilot.errors import ConfigError, PredictorError

if TYPE_CHECKING:
    import pandas as pd

PredictorOutput: TypeAlias = "pd.DataFrame | pd.Series"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".cloudpickle")


class Predictor(Protocol):
    """``predict(live_features)``: a DataFrame with a ``prediction`` column on the live index,
    or a Series on that index. ``live_features`` is indexed by ``id``; writing into it
    changes this call's copy only (pandas copy-on-write), never the next model's data."""

    def __call__(self, live_features: pd.DataFrame, /) -> PredictorOutput: ...


class BenchmarkPredictor(Protocol):
    """``predict(live_features, live_benchmark_models)``, as Numerai Model Uploads allow."""

    def __call__(
        self, live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame, /
    ) -> PredictorOutput: ...



class PredictorKind(str, enum.Enum):
    """How a predictor reference is loaded: import a module, run a file, or unpickle."""

    MODULE = "module"
    FILE = "file"
    PICKLE = "pickle"


@dataclass(frozen=True)
class PredictorSpec:
    """A parsed predictor reference; small and picklable, so it travels to workers.

    ``key`` identifies the code to load: it changes when the file's size or mtime changes,
    so a worker that keeps the loaded predictor warm reloads an edited file. An importable
    module is keyed by name only (restart the workers to pick up changes to it).
    """

    ref: str
    kind: PredictorKind
    target: str  # module name, or the absolute path of the .py / pickle file
    function: str | None  # None for pickles
    fingerprint: str = ""  # "<mtime_ns>-<size>" of the file; "" for modules

    @property
    def key(self) -> str:
        """What a worker's cache of loaded predictors is keyed by (see the class)."""
        return f"{self.kind.value}:{self.target}:{self.function or ''}:{self.fingerprint}"

    @property
    def path(self) -> Path | None:
        """The file to load, or None for an importable module."""
        return None if self.kind is PredictorKind.MODULE else Path(self.target)

    def refreshed(self) -> PredictorSpec:
        """The same spec with the file's current fingerprint (one stat; no-op for modules or
        when the file is not visible from this process, e.g. it lives only on workers)."""
        path = self.path
        if path is None:
            return self
        try:
            fingerprint = _fingerprint(path)
        except OSError:
            return self
        return self if fingerprint == self.fingerprint else replace(self, fingerprint=fingerprint)


@dataclass(frozen=True)
class LoadedPredictor:
    """A predictor loaded in a worker; ``wants_benchmarks`` comes from its signature."""

    spec: PredictorSpec
    function: Callable[..., object]
    wants_benchmarks: bool


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{st.st_mtime_ns}-{st.st_size}"


def parse_predictor(
    ref: str, base_dir: Path, pickle_dirs: Sequence[Path] | None = None
) -> PredictorSpec:
    """Parse a predictor reference without running any of its code.

    >>> parse_predictor("models/alpha.pkl", Path("/srv/autopilot")).kind
    <PredictorKind.PICKLE: 'pickle'>

    Pickles must resolve (symlinks followed) inside one of ``pickle_dirs`` (relative ones
    are relative to ``base_dir``; default: ``[base_dir]``), because loading a pickle runs
    arbitrary code.
    Raises ConfigError naming the reference and the fix.
    """
    text = ref.strip()
    if not text:
        raise ConfigError("predictor reference is empty; use 'module:function', "
                          "'path/file.py:function' or 'path/model.pkl'")
    base = base_dir.expanduser().resolve()
    if text.lower().endswith(PICKLE_SUFFIXES):
        return _parse_pickle(text, base, pickle_dirs)
    location, sep, function = text.rpartition(":")
    # "C:\\x.py" has a drive colon but no function: rpartition leaves a one-letter location
    if not sep or not location or len(location) == 1:
        raise ConfigError(
            f"predictor {ref!r}: expected 'module:function', 'path/file.py:function' or "
            f"'path/model.pkl' (a Model Upload pickle); add ':function' naming the callable"
        )
    if not function.isidentifier():
        raise ConfigError(f"predictor {ref!r}: {function!r} is not a valid function name")
    if location.endswith(".py"):
        path = (base / Path(location).expanduser()).resolve()
        if not path.is_file():
            raise ConfigError(
                f"predictor {ref!r}: file {path} not found; paths are relative to {base}"
            )
        return PredictorSpec(text, PredictorKind.FILE, str(path), function, _fingerprint(path))
    if "/" in location or "\\" in location or not all(
        part.isidentifier() for part in location.split(".")
    ):
        raise ConfigError(
            f"predictor {ref!r}: {location!r} is neither a dotted module name nor a .py file"
        )
    return PredictorSpec(text, PredictorKind.MODULE, location, function)


def _parse_pickle(text: str, base: Path, pickle_dirs: Sequence[Path] | None) -> PredictorSpec:
    path = (base / Path(text).expanduser()).resolve()
    allowed = [(base / d.expanduser()).resolve() for d in (pickle_dirs or [base])]
    if not any(path.is_relative_to(d) for d in allowed):
        dirs = ", ".join(str(d) for d in allowed)
        raise ConfigError(
            f"predictor {text!r}: pickle {path} is outside the allowed pickle directories "
            f"({dirs}); a pickle is code, so move it into one of them or name its folder in "
            f"executor.pickle_dirs"
        )
    if not path.is_file():
        raise ConfigError(f"predictor {text!r}: pickle {path} not found")
    return PredictorSpec(text, PredictorKind.PICKLE, str(path), None, _fingerprint(path))


def load_predictor(spec: PredictorSpec) -> LoadedPredictor:
    """Import or unpickle the predictor (runs user code: call it only in a worker)."""
    if spec.kind is PredictorKind.PICKLE:
        function = _load_pickle(spec)
    else:
        module = _import_module(spec) if spec.kind is PredictorKind.MODULE else _exec_file(spec)
        assert spec.function is not None
        try:
            function = getattr(module, spec.function)
        except AttributeError:
            names = sorted(n for n in vars(module) if callable(getattr(module, n, None))
                           and not n.startswith("_"))
            raise PredictorError(
                f"predictor {spec.ref!r}: {spec.target} has no attribute {spec.function!r}; "
                f"callables there: {', '.join(names[:10]) or 'none'}"
            ) from None
    if not callable(function):
        raise PredictorError(
            f"predictor {spec.ref!r}: {type(function).__name__} object is not callable; "
            f"it must be a function predict(live_features[, live_benchmark_models])"
        )
    return LoadedPredictor(spec, function, _wants_benchmarks(spec, function))


def _import_module(spec: PredictorSpec) -> object:
    try:
        return importlib.import_module(spec.target)
    except ModuleNotFoundError as exc:
        raise PredictorError(
            f"predictor {spec.ref!r}: cannot import {spec.target!r} ({exc}); install the "
            f"package in the workers' environment or use a 'path/file.py:function' reference"
        ) from exc
    except Exception as exc:
        raise PredictorError(
            f"predictor {spec.ref!r}: importing {spec.target!r} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _exec_file(spec: PredictorSpec) -> object:
    path = Path(spec.target)
    # A private, unique module name: the user's "model.py" must not shadow or be shadowed by
    # an installed "model" module, and two files with the same name must not collide.
    digest = hashlib.sha1(f"{path}:{spec.fingerprint}".encode()).hexdigest()[:12]
    name = f"_autopilot_predictor_{path.stem if path.stem.isidentifier() else 'file'}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise PredictorError(f"predictor {spec.ref!r}: cannot load {path} as Python")
    module = importlib.util.module_from_spec(module_spec)
    # Registered under the private name so dataclasses and pickling inside it work.
    sys.modules[name] = module
    # The file's directory is importable only while the file runs, for its sibling helpers.
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        module_spec.loader.exec_module(module)
    except FileNotFoundError as exc:
        del sys.modules[name]
        raise PredictorError(f"predictor {spec.ref!r}: file {path} not found: {exc}") from exc
    except Exception as exc:
        del sys.modules[name]
        raise PredictorError(
            f"predictor {spec.ref!r}: running {path.name} raised {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def _load_pickle(spec: PredictorSpec) -> Callable[..., object]:
    import cloudpickle

    try:
        with open(spec.target, "rb") as fh:
            obj: Callable[..., object] = cloudpickle.load(fh)
    except FileNotFoundError as exc:
        raise PredictorError(f"predictor {spec.ref!r}: pickle {spec.target} not found") from exc
    except Exception as exc:
        raise PredictorError(
            f"predictor {spec.ref!r}: cannot unpickle {Path(spec.target).name} "
            f"({type(exc).__name__}: {exc}); pickles need the same Python and library "
            f"versions as the environment that made them (this is Python "
            f"{sys.version_info.major}.{sys.version_info.minor})"
        ) from exc
    return obj


def _wants_benchmarks(spec: PredictorSpec, function: Callable[..., object]) -> bool:
    """Like Model Uploads: two positional parameters mean (live_features, benchmarks)."""
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False  # builtins without a signature: call with one argument
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) > 2 or (not positional and not any(p.kind is p.VAR_POSITIONAL
                                                         for p in params)):
        raise PredictorError(
            f"predictor {spec.ref!r}: takes {len(required)} required arguments; a predictor "
            f"takes live_features and optionally live_benchmark_models"
        )
    return len(positional) >= 2

