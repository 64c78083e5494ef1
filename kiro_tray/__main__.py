"""``python -m kiro_tray``: the tray app, or ``--headless`` for the server alone."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
