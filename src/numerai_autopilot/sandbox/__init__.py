"""A local Numerai: the same GraphQL operations, presigned-style file URLs, uploads, rounds,
webhooks and fault injection, with synthetic data in Numerai's layout.

    from numerai_autopilot.sandbox import SandboxSettings, Sandbox, create_app, serve
    from numerai_autopilot.sandbox.testing import running_sandbox, serve_asgi
"""

from .asgi import create_app
from .server import serve
from .settings import (
    DEFAULT_PUBLIC_ID,
    DEFAULT_SECRET_KEY,
    TEST_SIZES,
    DataSizes,
    ModelSpec,
    SandboxSettings,
    parse_models,
)
from .state import Sandbox, SandboxError

__all__ = [
    "DEFAULT_PUBLIC_ID",
    "DEFAULT_SECRET_KEY",
    "TEST_SIZES",
    "DataSizes",
    "ModelSpec",
    "Sandbox",
    "SandboxError",
    "SandboxSettings",
    "create_app",
    "parse_models",
    "serve",
]
