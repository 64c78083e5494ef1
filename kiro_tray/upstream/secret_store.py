"""Where the app keeps its secrets: the OS keyring, or visibly a private file when there is none.

Entries live under the keyring service ``kiro-tray``; the names the app uses:

- ``proxy_api_key``: the key clients must send to the gateway (generated on first run).
- a Kiro login the app saved itself: the entries named in ``credentials.saved_login``, the only code
  that reads or writes them.

When keyring has no usable backend (the ``fail`` or ``null`` backend, a chainer with nothing to chain, or
any ``KeyringError`` on first use) the store falls back to ``secrets.json`` in the directory it is given:
directory created 0700, file 0600, rewritten atomically (:mod:`kiro_tray.atomic`; temp files a killed
process left behind are removed when the fallback is chosen and on every write). ``is_fallback`` says
so and one WARNING names the file. Once the keyring has worked, a later failure (locked keyring, access
denied) raises :class:`SecretStoreError`, as does an unreadable fallback file; the message never holds a
value.

Everything here blocks (D-Bus, Keychain, file I/O): call it through ``asyncio.to_thread``. Values are
never logged.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import keyring
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, PasswordDeleteError

from kiro_tray import atomic

log = logging.getLogger(__name__)

SERVICE = "kiro-tray"
FALLBACK_FILE_NAME = "secrets.json"
_PROBE_NAME = "__kiro_tray_probe__"


class SecretStoreError(Exception):
    """The secret store cannot be read or written (the message names where and why, never a value)."""


class SecretStore:
    """Named secrets in the OS keyring, or in ``<fallback_dir>/secrets.json`` when no keyring works.

    ``backend`` overrides ``keyring.get_keyring()`` (tests); the choice is made on first use.
    """

    def __init__(self, fallback_dir: Path, *, backend: KeyringBackend | None = None) -> None:
        self._fallback_path = fallback_dir / FALLBACK_FILE_NAME
        self._explicit_backend = backend
        self._backend: KeyringBackend | None = None  # the working keyring, once resolved
        self._resolved = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = self._describe(self._backend) if self._resolved else "not yet resolved"
        return f"<SecretStore {where}>"

    @property
    def fallback_path(self) -> Path:
        return self._fallback_path

    @property
    def is_fallback(self) -> bool:
        """True when secrets go to the private file because no OS keyring works."""
        with self._lock:
            return self._resolve() is None

    @property
    def backend_description(self) -> str:
        """Where secrets live, for the UI and logs, e.g. ``OS keyring (SecretService Keyring)``. The first
        call picks the backend (blocking); later calls are cheap."""
        with self._lock:
            return self._describe(self._resolve())

    def _describe(self, backend: KeyringBackend | None) -> str:
        if backend is None:
            return f"file {self._fallback_path} (no OS keyring available)"
        return f"OS keyring ({_backend_name(backend)})"

    def get(self, name: str) -> str | None:
        with self._lock:
            backend = self._resolve()
            if backend is None:
                return self._read_file().get(name)
            try:
                value: str | None = backend.get_password(SERVICE, name)
            except KeyringError as exc:
                raise _keyring_failed(backend, "read", name, exc) from None
            return value

    def set(self, name: str, value: str) -> None:
        with self._lock:
            backend = self._resolve()
            if backend is None:
                entries = self._read_file()
                entries[name] = value
                self._write_file(entries)
                return
            try:
                backend.set_password(SERVICE, name, value)
            except KeyringError as exc:
                raise _keyring_failed(backend, "write", name, exc) from None

    def delete(self, name: str) -> None:
        """Remove ``name``; deleting a missing entry is not an error."""
        with self._lock:
            backend = self._resolve()
            if backend is None:
                entries = self._read_file()
                if entries.pop(name, None) is not None:
                    self._write_file(entries)
                return
            try:
                backend.delete_password(SERVICE, name)
            except PasswordDeleteError:
                pass  # already absent
            except KeyringError as exc:
                raise _keyring_failed(backend, "delete", name, exc) from None

    # -- backend choice -------------------------------------------------------------------------------

    def _resolve(self) -> KeyringBackend | None:
        """The working keyring backend, or None for the file fallback. Caller holds the lock."""
        if self._resolved:
            return self._backend
        backend = self._explicit_backend or keyring.get_keyring()
        reason = _unusable_reason(backend)
        if reason is None:
            try:
                backend.get_password(SERVICE, _PROBE_NAME)
            except KeyringError as exc:
                reason = f"{_backend_name(backend)} failed: {type(exc).__name__}"
        self._resolved = True
        if reason is None:
            self._backend = backend
            log.debug("secrets are kept in the OS keyring (%s)", _backend_name(backend))
        else:
            log.warning(
                "no usable OS keyring (%s): secrets are kept in %s, readable only by you",
                reason,
                self._fallback_path,
            )
            atomic.remove_stale_temps(self._fallback_path.parent, self._fallback_path.name)
        return self._backend

    # -- file fallback --------------------------------------------------------------------------------

    def _read_file(self) -> dict[str, str]:
        path = self._fallback_path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretStoreError(f"secret file {path} cannot be read: {exc.strerror}") from None
        except ValueError:
            raise SecretStoreError(f"secret file {path} is not valid JSON; fix or delete it") from None
        if not isinstance(data, dict):
            raise SecretStoreError(f"secret file {path} does not hold a JSON object; fix or delete it")
        return {str(k): v for k, v in data.items() if isinstance(v, str)}

    def _write_file(self, entries: dict[str, str]) -> None:
        directory = self._fallback_path.parent
        try:
            if not directory.exists():
                directory.mkdir(mode=0o700, parents=True)
                os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
            atomic.write_json(self._fallback_path, entries, mode=0o600)
        except OSError as exc:
            raise SecretStoreError(
                f"secret file {self._fallback_path} cannot be written: {exc.strerror}"
            ) from None


def _keyring_failed(backend: KeyringBackend, action: str, name: str, exc: KeyringError) -> SecretStoreError:
    reason = f"{type(exc).__name__}: {exc}"
    return SecretStoreError(f"{_backend_name(backend)} could not {action} {name}: {reason}")


def _unusable_reason(backend: KeyringBackend) -> str | None:
    if isinstance(backend, keyring.backends.fail.Keyring):
        return "keyring found no backend"
    if isinstance(backend, keyring.backends.null.Keyring):
        return "keyring is configured with the null backend"
    if isinstance(backend, keyring.backends.chainer.ChainerBackend) and not backend.backends:
        return "the keyring chainer has no backends"
    return None


def _backend_name(backend: KeyringBackend) -> str:
    name = getattr(backend, "name", None)
    return name if isinstance(name, str) and name else type(backend).__name__
