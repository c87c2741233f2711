"""What a deploy may put in the image and upload to the build: no secret.

The image holds `autopilot.toml` (the Dockerfile copies it) and `gcloud run deploy --source`
uploads the build folder to Cloud Build's bucket. A secret written in the config would end up
in both, so a config that holds one is refused, naming each key and where its value belongs
instead (the environment, which `--setup` stores in Secret Manager). The `.env` file beside
the config holds secrets too: a source deploy is refused while gcloud would upload it (no
`.gcloudignore` or `.gitignore` line naming it).

    check_no_literal_secrets(Path("autopilot.toml"))    # ConfigError naming the keys
    check_env_file_not_uploaded(Path("."))              # ConfigError if .env would be uploaded
"""

from __future__ import annotations

from pathlib import Path

from numerai_autopilot.config import ENV_FILE, literal_secrets
from numerai_autopilot.errors import ConfigError

# The fix for a key whose value the environment cannot carry to the service as it is.
_FIXES = {
    "server.previous_secrets": "during a rotation, deploy with --previous-secret-version N "
                               "(the webhook secret's old version in Secret Manager)",
    "server.dashboard_password": "write its hash as server.dashboard_password_hash instead "
                                 "(python -m numerai_autopilot.web.dashboard.passwords)",
    "ledger.url": "remove the password from the URL: with --cloudsql the service reads it as "
                  "PGPASSWORD from Secret Manager (--setup stores AUTOPILOT_LEDGER_PASSWORD)",
}
_IGNORED = {ENV_FILE, f"/{ENV_FILE}", "*.env", ".env*"}


def check_no_literal_secrets(config_path: Path) -> None:
    """Refuse the config at `config_path` if any key holds a secret's value (`sm://`
    references are fine).

    :raises ConfigError: one line per key, saying where its value belongs; never the value.
    """
    found = literal_secrets(config_path)
    if not found:
        return
    lines = [(f"{config_path}: a secret in this file would be copied into the image and "
              "uploaded to the build; remove it from the file:")]
    for key, variable in found.items():
        fix = _FIXES.get(key, f"set {variable} in the environment or the {ENV_FILE} file "
                              "beside the config (--setup stores it in Secret Manager)")
        lines.append(f"  {key}: {fix}")
    raise ConfigError("\n".join(lines))


def check_env_file_not_uploaded(folder: Path) -> None:
    """Refuse a source deploy of `folder` whose `.env` gcloud would upload.

    gcloud skips what `.gcloudignore` names; without one, what `.gitignore` names (when
    either `.gitignore` or `.git` exists); without those, nothing.
    :raises ConfigError: naming the file and the line to add.
    """
    if not (folder / ENV_FILE).exists():
        return
    for name in (".gcloudignore", ".gitignore"):
        ignore = folder / name
        if ignore.is_file():
            lines = {line.strip() for line in ignore.read_text(errors="replace").splitlines()}
            if lines & _IGNORED:
                return
            if name == ".gcloudignore" and "#!include:.gitignore" not in lines:
                break
    raise ConfigError(
        f"{folder / ENV_FILE} holds secrets and `gcloud run deploy --source` would upload it "
        f"to Cloud Build; add a line `{ENV_FILE}` to {folder / '.gitignore'} (or "
        f"{folder / '.gcloudignore'})"
    )
