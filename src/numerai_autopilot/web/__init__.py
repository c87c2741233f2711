"""The FastAPI server: webhook, health, JSON API."""

from numerai_autopilot.web.app import create_app

__all__ = ["create_app"]
