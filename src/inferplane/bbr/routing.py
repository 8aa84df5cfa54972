"""Body-based routing, the logic: which model a request body names, and the headers that route it (extproc.md §7).

Pure code: bytes in, a decision out. `X-Gateway-Model-Name` carries the body's `model`; `X-Gateway-Base-Model-Name`
carries the base model of a LoRA adapter (or of a base model, itself), "" when the model is unknown, as upstream
BBR's `base-model-to-header` plugin does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from inferplane.api.base import ApiModel
from inferplane.errors import ConfigError

MODEL_HEADER = "x-gateway-model-name"
BASE_MODEL_HEADER = "x-gateway-base-model-name"
ROUTING_HEADERS = (MODEL_HEADER, BASE_MODEL_HEADER)


@dataclass(frozen=True)
class BbrError(Exception):
    """A body the router refuses; answered as an OpenAI-style error."""

    status: int
    message: str
    param: str | None = None

    def openai_body(self) -> bytes:
        kind = {400: "BadRequestError", 413: "BadRequestError"}.get(self.status, "InternalServerError")
        return json.dumps(
            {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.status}},
            separators=(",", ":"),
        ).encode()


@dataclass(frozen=True)
class Routing:
    model: str
    base_model: str

    def headers(self) -> dict[str, str]:
        return {MODEL_HEADER: self.model, BASE_MODEL_HEADER: self.base_model}


class ModelFamily(ApiModel):
    """One entry of the models file, the shape of upstream BBR's ConfigMap data: a base model and its adapters."""

    base_model: str = Field(min_length=1)
    adapters: list[str] = Field(default_factory=list)


class BaseModels:
    """model or adapter name → base model name."""

    def __init__(self, families: Iterable[ModelFamily] = ()) -> None:
        self._base: dict[str, str] = {}
        for fam in families:
            for name in (fam.base_model, *fam.adapters):
                previous = self._base.setdefault(name, fam.base_model)
                if previous != fam.base_model:
                    raise ConfigError(
                        f"model {name!r} is listed under two base models ({previous!r} and {fam.base_model!r})",
                        hint="every model and adapter name must be unique across pools",
                    )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]]) -> BaseModels:
        return cls(ModelFamily(base_model=b, adapters=list(a)) for b, a in mapping.items())

    @classmethod
    def load(cls, path: Path) -> BaseModels:
        """A YAML/JSON list of `{baseModel: NAME, adapters: [NAME, ...]}`."""
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read models file {path}: {exc}") from None
        if data is None:
            return cls()
        if not isinstance(data, list):
            raise ConfigError(
                f"{path}: expected a list of {{baseModel, adapters}} entries",
                hint="- baseModel: meta-llama/Llama-3.1-8B-Instruct\n    adapters: [food-review]",
            )
        families = []
        for i, item in enumerate(data):
            try:
                families.append(ModelFamily.model_validate(item))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ConfigError(f"{path}: entry {i}: {where}: {first['msg']}") from None
        return cls(families)

    def base_of(self, model: str) -> str:
        return self._base.get(model, "")

    def __len__(self) -> int:
        return len(self._base)


def route_body(body: bytes, models: BaseModels) -> Routing:
    """The routing headers for a request body; BbrError(400) for anything that is not a JSON object with a
    non-empty string `model`."""
    try:
        text = body.decode("utf-8")  # RFC 8259: JSON on the wire is UTF-8; json.loads(bytes) would guess UTF-16/32
    except UnicodeDecodeError:
        raise BbrError(400, "request body is not valid UTF-8") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BbrError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BbrError(400, "request body must be a JSON object")
    model = data.get("model")
    if model is None or model == "":
        raise BbrError(400, "model not found in request body", param="model")
    if not isinstance(model, str):
        raise BbrError(400, "`model` must be a string", param="model")
    return Routing(model, models.base_of(model))
