"""Metrics tests use the dashboard tests' server harness."""

from __future__ import annotations


