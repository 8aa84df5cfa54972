"""Positioned problems found in a deployment: what `inferplane validate` prints and what the loader raises.

A `Diagnostic` names the file, line, column and field path of one problem, says what was expected and what was
found, and may carry a hint (usually a near-miss suggestion). Errors stop a deployment from loading and are raised
together as one `DiagnosticsError`; warnings travel on the loaded `Deployment`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from inferplane.errors import InferplaneError

Severity = Literal["error", "warning"]
Path = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """`("spec", "targetPorts", 0, "number")` → `spec.targetPorts[0].number`; keys with dots are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in part or "[" in part or not part:
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else part
    return out


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt name, or None when nothing is close enough."""
    pool = sorted({c for c in candidates if isinstance(c, str)})
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        matches = [lowered[word.lower()]] if word.lower() in lowered else []
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    best = suggest(word, candidates)
    return f"did you mean {best}?" if best else None


def describe(value: Any) -> str:
    """What was found, in words: `string '8000'`, `integer 8000`, `a mapping`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"string {shown!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str | None = None

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        head = (
            f"{where}: {self.severity}: {self.path}: {self.message}"
            if self.path
            else (f"{where}: {self.severity}: {self.message}")
        )
        return head if not self.hint else f"{head}\n  hint: {self.hint}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.message)


class DiagnosticsError(InferplaneError):
    """Every error found while loading a deployment, reported together."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: d.sort_key)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        count = len(errors)
        summary = f"{count} error{'s' if count != 1 else ''} found"
        super().__init__(summary + "\n" + "\n".join(d.format() for d in self.diagnostics))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


@dataclass
class Collector:
    """Accumulates diagnostics across files so a whole directory's problems come out at once."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        if diagnostic not in self.items:
            self.items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        for d in diagnostics:
            self.add(d)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return sorted((d for d in self.items if d.severity == "warning"), key=lambda d: d.sort_key)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise DiagnosticsError(self.items)
