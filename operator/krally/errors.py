"""Errors that krally reports to users as one clear line (no traceback)."""


class KrallyError(Exception):
    """Base of every error krally explains to a user."""


class PluginNotFound(KrallyError):
    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        listing = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown {kind} plugin {name!r}; known {kind} plugins: {listing}")


class InvalidConfig(KrallyError):
    """A plugin config or a task field is invalid. ``path`` is the dotted field path."""

    def __init__(self, path: str, message: str):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)


class TaskFileError(KrallyError):
    """A task file cannot be read or parsed; names the file."""
