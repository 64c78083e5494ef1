"""PyInstaller entry point: the bundle's executable behaves like ``python -m kiro_tray``."""

import sys

from kiro_tray.cli import main

if __name__ == "__main__":
    sys.exit(main())
