"""Kiro Tray: a local OpenAI- and Anthropic-compatible gateway to Kiro."""

__version__ = "0.1.0"
NAME = "kiro-tray"
