"""The method registry: named JSON-RPC methods with typed (pydantic) parameters.

    registry = MethodRegistry()

    class EchoParams(BaseModel):
        message: str

    @registry.method("echo")
    async def echo(params: EchoParams, ctx: CallContext) -> dict[str, str]:
        return {"message": params.message}

Params arrive as a JSON object (by name) or array (by position, in field order) and are
validated against the model: a mismatch is -32602 with the problems listed (never the input
values, which may be secret). A streaming method is an async generator; the server sends each
item as a Server-Sent Event.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ValidationError

from bastion.core.context import CallContext
from bastion.protocol.errors import INVALID_PARAMS, RpcError

Handler = Callable[..., Awaitable[Any]] | Callable[..., AsyncIterator[Any]]


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    handler: Handler
    params_model: type[BaseModel]
    streaming: bool
    wants_context: bool
    description: str


class _NoParams(BaseModel):
    model_config = {"extra": "forbid"}


def _params_model(fn: Handler) -> tuple[type[BaseModel], bool]:
    sig = inspect.signature(fn)
    hints = get_type_hints(fn)
    names = list(sig.parameters)
    model: type[BaseModel] = _NoParams
    if names:
        first = hints.get(names[0])
        if isinstance(first, type) and issubclass(first, BaseModel):
            model = first
        elif first is not CallContext:
            raise TypeError(
                f"{fn.__name__}: the first parameter must be a pydantic model (the params)"
                " or the CallContext"
            )
    wants_context = any(hints.get(n) is CallContext for n in names)
    return model, wants_context


def validation_problems(exc: ValidationError) -> list[dict[str, str]]:
    """The problems in a ValidationError, without the offending input values."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(params)", "problem": err["msg"]}
        for err in exc.errors(include_input=False, include_url=False)
    ]


class MethodRegistry:
    """Methods an agent serves, by name."""

    def __init__(self) -> None:
        self._methods: dict[str, MethodSpec] = {}

    def method(
        self,
        name: str | None = None,
        *,
        streaming: bool = False,
        description: str = "",
    ) -> Callable[[Handler], Handler]:
        def decorator(fn: Handler) -> Handler:
            self.add(name or fn.__name__, fn, streaming=streaming, description=description)
            return fn

        return decorator

    def add(
        self, name: str, fn: Handler, *, streaming: bool = False, description: str = ""
    ) -> None:
        if name in self._methods:
            raise ValueError(f"method {name!r} is already registered")
        if name.startswith("rpc."):
            raise ValueError("method names starting with 'rpc.' are reserved by JSON-RPC")
        is_gen = inspect.isasyncgenfunction(fn)
        if streaming != is_gen:
            raise TypeError(f"{name}: streaming methods must be async generators, others not")
        model, wants_context = _params_model(fn)
        self._methods[name] = MethodSpec(
            name=name,
            handler=fn,
            params_model=model,
            streaming=streaming,
            wants_context=wants_context,
            description=description or (inspect.getdoc(fn) or "").split("\n")[0],
        )

    def get(self, name: str) -> MethodSpec | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return sorted(self._methods)

    def specs(self) -> list[MethodSpec]:
        return [self._methods[n] for n in self.names()]

    @staticmethod
    def bind(spec: MethodSpec, params: dict[str, Any] | list[Any] | None) -> BaseModel:
        """Validate params against the method's model; -32602 on mismatch."""
        model = spec.params_model
        if isinstance(params, list):
            fields = list(model.model_fields)
            if len(params) > len(fields):
                raise RpcError(
                    INVALID_PARAMS, data=[{"field": "(params)", "problem": "too many arguments"}]
                )
            params = dict(zip(fields, params, strict=False))
        try:
            return model.model_validate(params or {})
        except ValidationError as exc:
            raise RpcError(INVALID_PARAMS, data=validation_problems(exc)) from None

    @staticmethod
    def invoke(spec: MethodSpec, bound: BaseModel, ctx: CallContext) -> Any:
        """Call the handler: an awaitable, or an async iterator for streaming methods."""
        args: list[Any] = []
        if spec.params_model is not _NoParams:
            args.append(bound)
        if spec.wants_context:
            args.append(ctx)
        return spec.handler(*args)
