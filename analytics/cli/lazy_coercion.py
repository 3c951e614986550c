"""Typer 0.29 coerces every option value through a pydantic ``TypeAdapter``, built for each
parameter while the command line is parsed, text options included. That imports pydantic and
builds 10-20 adapters (about 0.06-0.08 s) ahead of every command, on the path a ``metrics`` or
``deployments`` run waits on, although the parser already gives text options as ``str`` and most
options are left unset (``None``, which the base coercion returns without an adapter).

:func:`install` makes the adapter lazy. A text value of a ``str`` option is taken as it is; an
unset value never needs one; a choice option's value is matched as Typer's adapter matches it
(``coerce_cli_choice``); a repeated text option's values become the list the adapter builds. Any
other value (a number, a path, a choice that matches nothing) gets Typer's own coercion, built the
first time such a value arrives, with Typer's messages. When Typer's internals are not the ones
this was written for (another Typer version), the patch is not applied and nothing changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

_MARK = "_gitops_dora_lazy"


def typer_builder() -> Any:
    """Typer's own runtime-parameter builder, as it was before :func:`install` (tests compare)."""
    import typer.core as core

    builder = core.build_runtime_param
    return getattr(builder, "__wrapped__", builder)


def _path_items(annotation: Any, info: Any) -> type[Path] | None:
    """The Path class a path option (``Path`` or ``list[Path]``) makes of each text value, when
    Typer routes it to its path coercion; None for anything else (left to Typer)."""
    if get_origin(annotation) is list and len(get_args(annotation)) == 1:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is not None or not isinstance(annotation, type) \
            or not issubclass(annotation, Path) or getattr(info, "parser", None) is not None:
        return None
    path_type = getattr(info, "path_type", None) or annotation
    return path_type if isinstance(path_type, type) and issubclass(path_type, Path) else None


def install() -> bool:
    """Patch Typer's runtime-parameter builder once; whether the patch is in place."""
    try:
        import typer.core as core
        from typer import _coercion, _param_types
    except ImportError:  # pragma: no cover - Typer without these modules
        return False
    original = getattr(core, "build_runtime_param", None)
    choose = getattr(_param_types, "coerce_cli_choice", None)
    check_path = getattr(_param_types, "coerce_cli_path", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None or not hasattr(base, "_coerce_value"):
        return False
    if getattr(original, _MARK, False):
        return True
    typers_own: Callable[[Any], Any] = original

    @dataclass(frozen=True)
    class LazyRuntimeParam(base):  # type: ignore[misc, valid-type]
        """Typer's coercion for one parameter, built on the first value that needs it."""

        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            annotation = self.annotation
            if isinstance(value, str) and annotation is str:
                return value
            if isinstance(value, (list, tuple)) and get_origin(annotation) is list \
                    and get_args(annotation) == (str,) and all(isinstance(v, str) for v in value):
                return list(value)  # what Typer's list adapter builds from text items
            if choose is not None and isinstance(annotation, type) and issubclass(annotation, Enum) \
                    and isinstance(value, (str, Enum)):
                # what Typer's choice adapter runs, without the adapter; a value that is not a
                # choice goes on to Typer's own path, for its message
                with contextlib.suppress(ValueError):
                    return choose(value, choices=tuple(annotation),
                                  case_sensitive=self.parameter_info.case_sensitive, ctx=ctx)
            path_type = _path_items(annotation, self.parameter_info)
            if check_path is not None and path_type is not None:
                # what Typer's path adapter runs (pydantic makes the Path, then Typer checks it),
                # without importing pydantic to make a Path from text
                if isinstance(value, str) and "\0" not in value:
                    return check_path(path_type(value), self.parameter_info, path_type=path_type,
                                      param=param, ctx=ctx)
                if isinstance(value, (list, tuple)) and get_origin(annotation) is list \
                        and all(isinstance(v, str) and "\0" not in v for v in value):
                    return [check_path(path_type(v), self.parameter_info, path_type=path_type,
                                       param=param, ctx=ctx) for v in value]
            real = self.__dict__.get("_real")
            if real is None:
                real = typers_own(self.descriptor)
                object.__setattr__(self, "_real", real)
            return real._coerce_value(value, param=param, ctx=ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        info = getattr(descriptor, "parameter_info", None)
        if getattr(descriptor, "file_annotation", None) is not None \
                or getattr(info, "parser", None) is not None:
            return typers_own(descriptor)  # files are opened, parsers called: Typer's own path
        return LazyRuntimeParam(annotation=descriptor.annotation, parameter_info=info, descriptor=descriptor)

    setattr(build_runtime_param, _MARK, True)
    build_runtime_param.__wrapped__ = original  # type: ignore[attr-defined]
    core.build_runtime_param = build_runtime_param
    return True
