"""What the app remembers between sessions, stored with QSettings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "InpaintStudio"
APPLICATION = "Inpaint Studio"
MAX_RECENT = 10


class Settings:
    """Typed access to the app's QSettings: folder, brush, model, geometry, recent files."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self._s = settings if settings is not None else QSettings()

    def _get(self, key: str, default, kind):
        value = self._s.value(key, default)
        try:
            return kind(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    @property
    def last_folder(self) -> str:
        return self._get("files/last_folder", str(Path.home()), str)

    @last_folder.setter
    def last_folder(self, folder: str) -> None:
        self._s.setValue("files/last_folder", folder)

    @property
    def brush_size(self) -> int:
        return self._get("canvas/brush_size", 40, int)

    @brush_size.setter
    def brush_size(self, size: int) -> None:
        self._s.setValue("canvas/brush_size", int(size))

    @property
    def model_id(self) -> str:
        return self._get("inpaint/model", "", str)

    @model_id.setter
    def model_id(self, model_id: str) -> None:
        self._s.setValue("inpaint/model", model_id)

    @property
    def samples(self) -> int:
        return self._get("inpaint/samples", 4, int)

    @samples.setter
    def samples(self, count: int) -> None:
        self._s.setValue("inpaint/samples", int(count))

    @property
    def geometry(self) -> QByteArray | None:
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._s.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self._s.value("window/state")
        return value if isinstance(value, QByteArray) else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._s.setValue("window/state", value)

    @property
    def recent_files(self) -> list[str]:
        value = self._s.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value or []]

    def add_recent(self, path: str) -> list[str]:
        """Put ``path`` first in the recent-files list (deduplicated, at most MAX_RECENT)."""
        recent = [p for p in self.recent_files if p != path]
        recent.insert(0, path)
        recent = recent[:MAX_RECENT]
        self._s.setValue("files/recent", recent)
        return recent

    def remove_recent(self, path: str) -> list[str]:
        recent = [p for p in self.recent_files if p != path]
        self._s.setValue("files/recent", recent)
        return recent

    def sync(self) -> None:
        self._s.sync()
