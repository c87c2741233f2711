"""Each model in its own Python environment: building them, and whether each is ready.

    [environments.legacy]                 # autopilot.toml
    requirements = "envs/legacy.txt"      # lightgbm==3.3.5

    build(config, "legacy", log=print)    # a virtualenv at .autopilot/envs/legacy
    check(config, "legacy")               # EnvStatus(ready=True, problem=None)
    env_dir(config, "legacy") / RECORD_FILE   # the build's record: rewritten by each build
    env_python(config, "legacy")          # the interpreter its Dask workers start from

An environment with the server's Python is an overlay: its own packages first on sys.path,
then the server's (numerai_autopilot, dask, and whatever its requirements do not replace), so
it installs only what differs. Another Python gets the worker's packages at the server's
versions. Either way dask, distributed, cloudpickle and msgpack stay at the server's versions
(every process of a Dask cluster must match), and requirements that exclude them are refused.
A build is redone only when its requirements (nested files too), its Python, those versions
or numerai-autopilot's change; `check` says which, with the command that fixes it.

Modules: `requirements` (reading, refusing), `interpreter` (the server's side), `installer`
(uv or pip), `record` (what a build records), `status` (paths, check, describe), `build`.
"""

from numerai_autopilot.envs.build import BuildResult, build
from numerai_autopilot.envs.interpreter import HELD
from numerai_autopilot.envs.record import RECORD as RECORD_FILE
from numerai_autopilot.envs.record import EnvState
from numerai_autopilot.envs.status import (
    KEY_PACKAGES,
    EnvStatus,
    check,
    describe,
    env_dir,
    env_python,
)

__all__ = [
    "HELD",
    "KEY_PACKAGES",
    "RECORD_FILE",
    "BuildResult",
    "EnvState",
    "EnvStatus",
    "build",
    "check",
    "describe",
    "env_dir",
    "env_python",
]
