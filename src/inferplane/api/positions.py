"""YAML documents with positions: plain Python data plus a map from field path to (line, column).

PyYAML's composer keeps a mark on every node; we build the data ourselves from the node graph (rather than with
`safe_load`) so that each value and each mapping key keeps its place in the file. Keys are kept as the strings the
user wrote (Kubernetes decodes YAML into JSON objects, whose keys are strings), timestamps stay strings, and anything
that could not come from a Kubernetes manifest (custom tags, recursive aliases, alias bombs) is an error, never an
exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from inferplane.api.diagnostics import Diagnostic, Path, format_path

Pos = tuple[int, int]  # 1-based line and column

# libyaml's parser gives the same node marks 12-38x faster than the pure-Python one (benchmarks/api_load.py).
FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Far above any real manifest; stops "billion laughs" alias expansion from eating the machine.
MAX_NODES = 200_000

_PLAIN_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}
_STRING_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class YamlDoc:
    """One YAML document of a file."""

    file: str
    index: int
    data: Any
    start: Pos
    values: dict[Path, Pos] = field(default_factory=dict)
    keys: dict[Path, Pos] = field(default_factory=dict)
    # Where the text of a block scalar (`|`, `>`) begins: (line offset, column offset) for embedded YAML.
    blocks: dict[Path, Pos] = field(default_factory=dict)

    def pos(self, path: Path, *, key: bool = False) -> Pos:
        """Position of the value at `path` (or of its key), falling back to the nearest ancestor present."""
        if key and path in self.keys:
            return self.keys[path]
        for i in range(len(path), -1, -1):
            p = path[:i]
            if p in self.values:
                return self.values[p]
        return self.start

    def has(self, path: Path) -> bool:
        return path in self.values

    def diag(
        self,
        path: Path,
        message: str,
        *,
        hint: str | None = None,
        key: bool = False,
        severity: str = "error",
        at: Path | None = None,
    ) -> Diagnostic:
        """A diagnostic for `path`, positioned at `at` (default: `path` itself, or its nearest ancestor)."""
        line, col = self.pos(path if at is None else at, key=key)
        return Diagnostic(
            severity="warning" if severity == "warning" else "error",
            file=self.file,
            line=line,
            column=col,
            path=format_path(path),
            message=message,
            hint=hint,
        )


class _Abort(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: YamlDoc, lines: list[str], offset: Pos) -> None:
        self.loader = loader
        self.doc = doc
        self.lines = lines
        self.offset = offset
        self.count = 0
        self.active: set[int] = set()
        self.problems: list[Diagnostic] = []

    def mark(self, node: Node) -> Pos:
        line, col = node.start_mark.line, node.start_mark.column
        return (line + 1 + self.offset[0], col + 1 + self.offset[1])

    def build(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            line, col = self.mark(node)
            raise _Abort(
                Diagnostic(
                    "error",
                    self.doc.file,
                    line,
                    col,
                    format_path(path),
                    f"document too large: more than {MAX_NODES} values (alias expansion?)",
                )
            )
        self.doc.values.setdefault(path, self.mark(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            line, col = self.mark(node)
            raise _Abort(Diagnostic("error", self.doc.file, line, col, format_path(path), "recursive YAML alias"))
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
        finally:
            self.active.discard(id(node))
        return None  # pragma: no cover - the composer only makes the three node kinds

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.style in ("|", ">"):
            self.doc.blocks[path] = self.block_offset(node)
        if node.tag in _STRING_TAGS:
            return node.value
        if node.tag in _PLAIN_TAGS:
            try:
                return self.loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
                self.problem(node, path, f"cannot read scalar {node.value!r}: {exc}")
                return node.value
        self.problem(node, path, f"unsupported YAML tag {node.tag!r}", "remove the tag; manifests use plain values")
        return node.value

    def block_offset(self, node: ScalarNode) -> Pos:
        """Line and column offset of a block scalar's first content line, for positions inside embedded YAML."""
        first = node.start_mark.line + 1
        for i in range(first, min(len(self.lines), node.end_mark.line + 1)):
            text = self.lines[i]
            if text.strip():
                return (i + self.offset[0], len(text) - len(text.lstrip(" ")))
        return (first + self.offset[0], 0)

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem(
                    key_node,
                    path,
                    "mapping keys must be plain strings, found a "
                    + ("list" if isinstance(key_node, SequenceNode) else "mapping"),
                )
                continue
            key = key_node.value
            kpath = (*path, key)
            if key in result:
                first = self.doc.keys[kpath][0]
                self.problem(
                    key_node,
                    kpath,
                    f"duplicate key {key!r} (first given on line {first})",
                    "remove one of them; YAML keeps only the last",
                )
            self.doc.keys[kpath] = self.mark(key_node)
            self.doc.values.pop(kpath, None)
            result[key] = self.build(value_node, kpath)
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for src in sources:
                data = self.build(src, path) if isinstance(src, MappingNode) else None
                if not isinstance(data, dict):
                    self.problem(src, path, "a YAML merge key (<<) must name a mapping")
                    continue
                for k, v in data.items():
                    result.setdefault(k, v)
        return result

    def problem(self, node: Node, path: Path, message: str, hint: str | None = None) -> None:
        line, col = self.mark(node)
        self.problems.append(Diagnostic("error", self.doc.file, line, col, format_path(path), message, hint))


# PyYAML's parser vocabulary → what a person fixing the file needs to hear.
_FRIENDLY = (
    ("cannot start any token", "'\\t'", "a tab character: YAML indentation must use spaces"),
    ("expected <block end>", "", "bad indentation (or a missing ':' on the line before)"),
    ("mapping values are not allowed here", "", "unexpected ':' here: quote the value or fix the indentation"),
    ("found unexpected end of stream", "quoted scalar", "a quote that is never closed"),
    ("could not find expected ':'", "", "a key without ':' (or a quote that is never closed)"),
    ("did not find expected key", "", "bad indentation or a stray item in a mapping"),
    ("did not find expected '-' indicator", "", "bad indentation in a list"),
)


def _friendly(problem: str, context: str) -> str | None:
    for needle, ctx_needle, text in _FRIENDLY:
        if needle in problem and (not ctx_needle or ctx_needle in problem or ctx_needle in context):
            return text
    return None


def _yaml_error(exc: yaml.YAMLError, file: str, text: str, offset: Pos) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if "end of stream" in str(getattr(exc, "problem", "")) and getattr(exc, "context_mark", None) is not None:
        mark = exc.context_mark  # type: ignore[attr-defined]  # where the unclosed construct began
    if mark is not None:
        line, col = mark.line + 1, mark.column + 1
    elif isinstance(getattr(exc, "position", None), int):  # ReaderError: a character YAML does not allow
        pos = exc.position  # type: ignore[attr-defined]
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    else:
        line, col = 1, 1
    problem = str(getattr(exc, "problem", None) or str(exc).splitlines()[0])
    context = str(getattr(exc, "context", None) or "")
    raw = f"{context}, {problem}" if context else problem
    friendly = _friendly(problem, context)
    message = f"invalid YAML: {friendly}" if friendly else f"invalid YAML: {raw}"
    return Diagnostic("error", file, line + offset[0], col + offset[1], "", message, hint=raw if friendly else None)


def parse_yaml(
    text: str, file: str, *, offset: Pos = (0, 0), loader_class: type[yaml.SafeLoader] | None = None
) -> tuple[list[YamlDoc], list[Diagnostic]]:
    """All documents of `text`, and the problems found. A syntax error ends the file (what follows is unreliable).

    `offset` shifts positions for YAML embedded in another file's block scalar (zero-based line, column)."""
    docs: list[YamlDoc] = []
    problems: list[Diagnostic] = []
    lines = text.splitlines()
    loader: yaml.SafeLoader | None = None
    try:
        # The reader checks the characters in its constructor, so that too can raise a YAML error.
        loader_class = loader_class or FAST_LOADER
        loader = loader_class(text)
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guarantees a node
                break
            start = (node.start_mark.line + 1 + offset[0], node.start_mark.column + 1 + offset[1])
            doc = YamlDoc(file=file, index=index, data=None, start=start)
            builder = _Builder(loader, doc, lines, offset)
            try:
                doc.data = builder.build(node, ())
            except _Abort as abort:
                problems.append(abort.diagnostic)
                doc.data = None
            problems.extend(builder.problems)
            docs.append(doc)
            index += 1
    except yaml.YAMLError as exc:
        if loader_class is not yaml.SafeLoader:
            # libyaml's messages leave out the offending character or alias: the pure-Python parser says more.
            return parse_yaml(text, file, offset=offset, loader_class=yaml.SafeLoader)
        problems.append(_yaml_error(exc, file, text, offset))
    except RecursionError:
        problems.append(Diagnostic("error", file, 1 + offset[0], 1, "", "invalid YAML: nested too deeply"))
    finally:
        if loader is not None:
            loader.dispose()
    return docs, problems
