"""numerai-autopilot: a self-hosted Numerai Compute."""

__version__ = "0.1.0"
