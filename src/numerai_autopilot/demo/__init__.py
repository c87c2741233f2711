"""`autopilot demo`: a whole round against a local Numerai sandbox, and the example predictors.

    from numerai_autopilot.demo import run_demo
    code = asyncio.run(run_demo(Path(".autopilot/demo")))   # 0 when every model submitted

`run_demo` is imported on first use: the example predictors under `demo.examples` run in
worker processes, which must not import the server to load them.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numerai_autopilot.demo.round import run_demo

__all__ = ["run_demo"]


def __getattr__(name: str) -> Any:
    if name == "run_demo":
        from numerai_autopilot.demo.round import run_demo

        return run_demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
