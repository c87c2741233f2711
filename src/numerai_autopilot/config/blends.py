"""Blend models checked against the rest of the configuration.

A blend model is a Numerai model whose predictions are a weighted rank average of other
configured models' predictions of the same round (`runs/blend.py` makes them):

    [models.ens]
    blend = { alpha = 0.5, beta = 0.3, gamma = 0.2 }
    blend_missing = "renormalize"     # or "fail"

Its members are models of this file and of its tournament; a blend may blend blends, never
in a cycle. Each blend holds one of `server.max_concurrent_runs` while it waits for its
members, so that limit must leave room for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from numerai_autopilot.config.models import ModelConfig

# What a blend does when members are missing: blend the others (with at least half the
# weight present) or fail.
BlendMissing = Literal["renormalize", "fail"]


def with_blend_data_versions(data: Any, defaults: Mapping[str, str]) -> Any:
    """The raw config `data` with each blend table lacking `data_version` given its members'
    (when they all use one; `defaults` by tournament for those that set none): a blend reads
    the live ids of the data its members downloaded, not another version's."""
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        return data

    def version(table: dict[str, Any]) -> str | None:
        given = table.get("data_version")
        return str(given) if given else defaults.get(str(table.get("tournament", "classic")))

    changed = dict(models)
    for name, table in models.items():
        if not isinstance(table, dict) or not isinstance(table.get("blend"), dict) \
                or "data_version" in table:
            continue
        members = [models.get(member) for member in table["blend"]]
        versions = {version(m) for m in members if isinstance(m, dict)}
        if len(versions) == 1 and None not in versions:
            changed[name] = {**table, "data_version": versions.pop()}
    return {**data, "models": changed}


def check_blends(models: Mapping[str, ModelConfig], max_concurrent_runs: int) -> None:
    """Raise ValueError naming the blend, the key and the fix when a blend's member is not a
    configured model of its tournament, when blends form a cycle ("blend cycle: ens -> ens2
    -> ens"), or when `max_concurrent_runs` leaves no run slot for the members."""
    graph: dict[str, list[str]] = {}
    for name, model in models.items():
        if model.blend is None:
            continue
        graph[name] = list(model.blend)
        for member in model.blend:
            other = models.get(member)
            if other is None:
                known = ", ".join(sorted(n for n in models if n != name)) or "none"
                raise ValueError(f"models.{name}.blend: {member!r} is not a configured model "
                                 f"(configured: {known}); blend models of this file, each "
                                 f"with its own [models.NAME] table")
            if other.tournament != model.tournament:
                raise ValueError(
                    f"models.{name}.blend: {member!r} is a {other.tournament} model and "
                    f"{name!r} a {model.tournament} one; a blend's members are models of its "
                    f"own tournament: remove {member!r} or set models.{name}.tournament")
    cycle = _cycle(graph)
    if cycle is not None:
        raise ValueError(f"models.{cycle[0]}.blend: blend cycle: {' -> '.join(cycle)}; a "
                         "blend cannot include itself, directly or through another blend")
    if graph and max_concurrent_runs <= len(graph):
        raise ValueError(
            f"server.max_concurrent_runs: {max_concurrent_runs} leaves no run for the members "
            f"of {len(graph)} blend model(s), each of which holds one while it waits for "
            f"them; set it to {len(graph) + 1} or more")


def _cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """The first cycle of blends found, as names from a blend back to itself, or None.

    >>> _cycle({"ens": ["alpha", "ens2"], "ens2": ["ens"]})
    ['ens', 'ens2', 'ens']
    """
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for member in graph.get(node, ()):
            found = visit(member, [*path, node])
            if found is not None:
                return found
        done.add(node)
        return None

    for start in graph:
        found = visit(start, [])
        if found is not None:
            return found
    return None
