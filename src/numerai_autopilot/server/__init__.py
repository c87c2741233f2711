"""The FastAPI server: webhook, health, JSON API."""

from numerai_autopilot.server.app import create_app

__all__ = ["create_app"]
