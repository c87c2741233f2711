"""A recording stand-in for `gcloud` (Google Cloud cannot be reached from the tests).

Installed as an executable named `gcloud` first on PATH. Each call appends
`{"argv": [...], "stdin": "..."}` to $GCLOUD_RECORD. $GCLOUD_STATE (JSON) holds what exists,
so `describe` answers like Google Cloud would and `create` makes things exist:
{"exists": [...], "apis": [...], "bindings": {"secret": ["member", ...]}}.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SERVICE_URL = "https://autopilot-3x4mpl3-ew.a.run.app"


def main(argv: list[str]) -> int:
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    with Path(os.environ["GCLOUD_RECORD"]).open("a") as record:
        record.write(json.dumps({"argv": argv, "stdin": stdin}) + "\n")
    state_path = Path(os.environ["GCLOUD_STATE"])
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    exists: list[str] = state.setdefault("exists", [])
    apis: list[str] = state.setdefault("apis", [])
    bindings: dict[str, list[str]] = state.setdefault("bindings", {})
    code = 0
    words = [a for a in argv if not a.startswith("-")]
    match argv[:3]:
        case ["run", "deploy", service]:
            exists.append(f"service:{service}")
        case ["run", "services", "describe"]:
            if f"service:{argv[3]}" not in exists:
                print(f"ERROR: service {argv[3]} not found", file=sys.stderr)
                return 1
            print(SERVICE_URL)
        case ["services", "list", *_]:
            print("\n".join(apis))
        case ["services", "enable", *_]:
            apis.extend(w for w in words[2:] if w.endswith(".googleapis.com"))
        case ["iam", "service-accounts", "describe"]:
            code = 0 if f"sa:{argv[3]}" in exists else 1
        case ["iam", "service-accounts", "create"]:
            project = argv[argv.index("--project") + 1]
            exists.append(f"sa:{argv[3]}@{project}.iam.gserviceaccount.com")
        case ["secrets", "describe", name]:
            code = 0 if f"secret:{name}" in exists else 1
        case ["secrets", "create", name]:
            exists.append(f"secret:{name}")
        case ["secrets", "versions", "add"]:
            code = 0 if f"secret:{argv[3]}" in exists and stdin else 1
        case ["secrets", "get-iam-policy", name]:
            members = bindings.get(name, [])
            role = "roles/secretmanager.secretAccessor"
            print(json.dumps({"bindings": [{"role": role, "members": members}] if members else []}))
        case ["secrets", "add-iam-policy-binding", name]:
            bindings.setdefault(name, []).append(argv[argv.index("--member") + 1])
        case _:
            print(f"fake gcloud: unexpected {argv}", file=sys.stderr)
            code = 2
    if code != 0 and "describe" not in argv[:3]:
        print(f"fake gcloud: failed {argv}", file=sys.stderr)
    state_path.write_text(json.dumps(state))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
