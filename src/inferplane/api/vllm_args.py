"""The vLLM flags inferplane needs to know about, parsed from a container's command line.

Model services pass vLLM flags as container args (`--port=8000`, `--max-model-len 2048`), sometimes inside a shell
script (`sh -c "ray start ... && vllm serve MODEL --port 8000"`). We only interpret the flags that change what
inferplane does (ports, parallelism, caching, LoRA, served names); all others stay in `raw`. Values that come from
the shell at run time (`$TP_SIZE`) are left unresolved rather than guessed. Hand-written instead of argparse: vLLM's
parser cannot be imported here, and argparse would stop at the first flag it does not know.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

INT_FLAGS = {
    "port": "port",
    "max-model-len": "max_model_len",
    "tensor-parallel-size": "tensor_parallel_size",
    "data-parallel-size": "data_parallel_size",
    "data-parallel-size-local": "data_parallel_size_local",
    "pipeline-parallel-size": "pipeline_parallel_size",
    "block-size": "block_size",
    "max-num-seqs": "max_num_seqs",
    "max-num-batched-tokens": "max_num_batched_tokens",
    "max-loras": "max_loras",
}
FLOAT_FLAGS = {"gpu-memory-utilization": "gpu_memory_utilization"}
STR_FLAGS = {"host": "host", "dtype": "dtype", "model": "model", "kv-events-config": "kv_events_config"}
LIST_FLAGS = {"served-model-name": "served_model_name", "lora-modules": "lora_modules"}
BOOL_FLAGS = {
    "enable-prefix-caching": ("enable_prefix_caching", True),
    "no-enable-prefix-caching": ("enable_prefix_caching", False),
    "enable-lora": ("enable_lora", True),
    "no-enable-lora": ("enable_lora", False),
}
# Flags that take no value, so the next word is not theirs (a positional model may follow).
SWITCHES = {
    "enforce-eager",
    "trust-remote-code",
    "disable-log-requests",
    "disable-log-stats",
    "disable-uvicorn-access-log",
    "enable-expert-parallel",
    "data-parallel-hybrid-lb",
    "data-parallel-external-lb",
    "async-scheduling",
    "enable-dbo",
    "enable-eplb",
    "headless",
    "enable-chunked-prefill",
    "no-enable-chunked-prefill",
    "enable-auto-tool-choice",
    "enable-sleep-mode",
    "skip-tokenizer-init",
}
SHORT = {"tp": "tensor-parallel-size", "dp": "data-parallel-size", "pp": "pipeline-parallel-size"}
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/bash", "/usr/bin/env"}


@dataclass
class VllmArgs:
    """Known vLLM flags of one model server (defaults are vLLM's); `raw` is the full argument list."""

    model: str | None = None
    port: int = 8000
    host: str | None = None
    max_model_len: int | None = None
    enable_prefix_caching: bool | None = None
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    data_parallel_size_local: int | None = None
    pipeline_parallel_size: int = 1
    served_model_name: list[str] = field(default_factory=list)
    block_size: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float | None = None
    kv_events_config: dict[str, Any] | str | None = None
    enable_lora: bool = False
    lora_modules: list[str] = field(default_factory=list)
    max_loras: int | None = None
    dtype: str | None = None
    raw: list[str] = field(default_factory=list)
    # Flags whose values the shell fills in at run time (e.g. `--tensor-parallel-size $TP_SIZE`).
    unresolved: list[str] = field(default_factory=list)
    port_given: bool = False

    @property
    def served_names(self) -> list[str]:
        """What clients put in `model`: --served-model-name, else the model path."""
        if self.served_model_name:
            return list(self.served_model_name)
        return [self.model] if self.model else []

    @property
    def lora_names(self) -> list[str]:
        """Adapter names from `--lora-modules name=path` or JSON `{"name": ...}` entries."""
        names = []
        for mod in self.lora_modules:
            if mod.startswith("{"):
                try:
                    data = json.loads(mod)
                except ValueError:
                    continue
                if isinstance(data, dict) and isinstance(data.get("name"), str):
                    names.append(data["name"])
            elif "=" in mod:
                names.append(mod.split("=", 1)[0])
        return names


def _int(text: str) -> int:
    """vLLM accepts human-readable sizes for lengths: 2k = 2000, 2K = 2048."""
    units = {"k": 1000, "K": 1024, "m": 1_000_000, "M": 1 << 20}
    if text and text[-1] in units and text[:-1].isdigit():
        return int(text[:-1]) * units[text[-1]]
    return int(text, 10)


def parse_vllm_args(args: list[str]) -> tuple[VllmArgs, list[tuple[int, str]]]:
    """Parse an argument list (without `vllm serve`); problems come back as (argument index, message)."""
    out = VllmArgs(raw=list(args))
    problems: list[tuple[int, str]] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("-") or tok == "-":
            if out.model is None:
                out.model = tok
            i += 1
            continue
        name, eq, inline = tok.lstrip("-").partition("=")
        name = SHORT.get(name, name).replace("_", "-")
        start = i
        if name in BOOL_FLAGS:
            attr, flag = BOOL_FLAGS[name]
            setattr(out, attr, flag)
            i += 1
            continue
        if name in LIST_FLAGS:
            values = [inline] if eq else []
            i += 1
            while not eq and i < len(args) and not args[i].startswith("-"):
                values.append(args[i])
                i += 1
            if name == "served-model-name":  # argparse semantics: the last occurrence wins
                out.served_model_name = values
            else:
                out.lora_modules.extend(values)
            continue
        if eq:
            value: str | None = inline
            i += 1
        elif name in SWITCHES:
            value = None
            i += 1
        elif i + 1 < len(args) and not (args[i + 1].startswith("--") or args[i + 1] == "-"):
            value = args[i + 1]
            i += 2
        else:
            value = None
            i += 1
        if name in INT_FLAGS or name in FLOAT_FLAGS or name in STR_FLAGS:
            if value is None:
                problems.append((start, f"--{name} needs a value"))
                continue
            if "$" in value:
                out.unresolved.append(f"--{name}")
                continue
            _set_value(out, name, value, start, problems)
    return out, problems


def _set_value(out: VllmArgs, name: str, value: str, index: int, problems: list[tuple[int, str]]) -> None:
    if name in INT_FLAGS:
        try:
            number = _int(value)
        except ValueError:
            problems.append((index, f"--{name} expects an integer, found {value!r}"))
            return
        if name == "port" and not 1 <= number <= 65535:
            problems.append((index, f"--port must be between 1 and 65535, found {number}"))
            return
        if name != "port" and number < 1:
            problems.append((index, f"--{name} must be at least 1, found {number}"))
            return
        setattr(out, INT_FLAGS[name], number)
        out.port_given = out.port_given or name == "port"
    elif name in FLOAT_FLAGS:
        try:
            setattr(out, FLOAT_FLAGS[name], float(value))
        except ValueError:
            problems.append((index, f"--{name} expects a number, found {value!r}"))
    elif name == "kv-events-config":
        try:
            out.kv_events_config = json.loads(value)
        except ValueError:
            out.kv_events_config = value
    else:
        setattr(out, STR_FLAGS[name], value)


def _shell_words(script: str) -> list[str]:
    lex = shlex.shlex(script.replace("\\\n", " "), posix=True, punctuation_chars=";&|\n")
    lex.whitespace = " \t\r"
    lex.whitespace_split = True
    try:
        return list(lex)
    except ValueError:  # an unclosed quote: fall back to plain words
        return script.split()


def vllm_command_args(command: list[str], args: list[str]) -> list[str] | None:
    """The arguments that follow `vllm serve` in a container's command line, or None when it runs no vLLM.

    Handles `command: [vllm, serve]`, an image entrypoint (`command` empty, args are flags), python -m, and shell
    scripts (`sh -c "... && vllm serve MODEL ..."`)."""
    argv = [*command, *args]
    if not argv:
        return []
    if command and command[0] in SHELLS and "-c" in argv:
        script = argv[argv.index("-c") + 1] if argv.index("-c") + 1 < len(argv) else ""
        words = _shell_words(script)
        for i in range(len(words) - 1):
            if words[i].endswith("vllm") and words[i + 1] == "serve":
                rest = []
                for w in words[i + 2 :]:
                    if w and set(w) <= set(";&|\n"):
                        break
                    rest.append(w)
                return rest
        return None
    for i, word in enumerate(argv):
        if word.endswith("vllm") and i + 1 < len(argv) and argv[i + 1] == "serve":
            return argv[i + 2 :]
        if word == "vllm.entrypoints.openai.api_server":
            return argv[i + 1 :]
    if not command:
        return list(args)
    return None
