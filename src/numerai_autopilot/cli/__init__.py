"""The `autopilot` command line: `main()` runs it (see `main.py` for the commands' modules).

    from numerai_autopilot.cli import main
    main()      # reads sys.argv; exits with the command's code
"""

from numerai_autopilot.cli.main import main
from numerai_autopilot.cli.shared import app

__all__ = ["app", "main"]
