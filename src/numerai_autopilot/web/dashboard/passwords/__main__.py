"""`python -m numerai_autopilot.web.dashboard.passwords`: print the hash of a password for
`server.dashboard_password_hash`.

On a terminal it asks twice without echoing; otherwise it reads one line from stdin (a
script, `printf '%s\\n' "$PASSWORD" | ...`). Exits 1 without printing a hash when the
password is empty or the two entries differ.
"""

from __future__ import annotations

import getpass
import sys

from numerai_autopilot.web.dashboard.passwords import hash_password


def main() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("dashboard password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ; nothing printed", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        print("empty password; nothing printed", file=sys.stderr)
        return 1
    print(hash_password(password))
    print("set it as server.dashboard_password_hash (and remove server.dashboard_password)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
