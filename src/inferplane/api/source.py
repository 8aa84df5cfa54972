"""Where a loaded object came from, so that checks run after loading can still point at file, line and field.

Objects converted from another form (a legacy InferencePool, chart values) keep a map from the v1 field path
to the path the user actually wrote, so a message about `spec.targetPorts` points at `targetPortNumber`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inferplane.api.diagnostics import Diagnostic, Path, format_path
from inferplane.api.positions import YamlDoc


@dataclass(frozen=True)
class SourcePos:
    """A position in a file, for display: `file:line:column` plus the field path there."""

    file: str
    line: int
    column: int
    path: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class Source:
    doc: YamlDoc
    base: Path = ()
    aliases: dict[Path, Path] = field(default_factory=dict)

    def resolve(self, path: Path) -> Path:
        """The path in the user's document for a path in the (possibly converted) object."""
        for prefix in sorted(self.aliases, key=len, reverse=True):
            if path[: len(prefix)] == prefix:
                return (*self.aliases[prefix], *path[len(prefix) :])
        return (*self.base, *path)

    def diag(
        self, path: Path, message: str, *, hint: str | None = None, severity: str = "error", key: bool = False
    ) -> Diagnostic:
        return self.doc.diag(self.resolve(path), message, hint=hint, severity=severity, key=key)

    def pos(self, path: Path = ()) -> SourcePos:
        resolved = self.resolve(path)
        line, col = self.doc.pos(resolved)
        return SourcePos(self.doc.file, line, col, format_path(resolved))
