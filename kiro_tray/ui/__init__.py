"""The desktop app (PySide6 + qasync). Only ``kiro_tray.cli`` imports it, lazily."""
