"""Typer's option coercion made lazy (analytics/cli/lazy_coercion.py) gives every option of every
command what Typer's own coercion gives: the same value, or the same error.

Each option is coerced both ways, through the patched builder and through Typer's own one, with
its default, with text, with each of its choices as written, in upper case and misspelt, and with
numbers and paths where the option takes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
from typer._click.core import Context
from typer._click.exceptions import BadParameter  # Typer 0.29 carries its own click

from analytics.cli import lazy_coercion
from analytics.cli.main import app


def _commands(command: Any) -> Iterator[Any]:
    yield command
    subcommands = getattr(command, "commands", None)
    if subcommands is not None:
        assert subcommands, command.name
        for sub in subcommands.values():
            yield from _commands(sub)


def _samples(annotation: Any, default: Any) -> list[Any]:
    here = Path(__file__)  # an existing file and folder, for the paths' checks (exists, file or dir)
    values: list[Any] = [None, default, "", "text", " spaced text ", "3", "-2", "abc", "2026-01-01",
                         "some/path", str(here), str(here.parent), "~/x", "-", "a\0b"]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        for member in annotation:
            text = str(member.value)
            values += [member, text, text.upper(), text + "-not"]
    return values


def _outcome(builder: Any, param: Any, value: Any, ctx: Context) -> tuple[str, Any]:
    try:
        return "value", builder(param.type_descriptor).coerce(value, param=param, ctx=ctx)
    except BadParameter as exc:
        return "error", exc.format_message()


def test_the_patch_is_in_place_and_keeps_typers_builder() -> None:
    assert lazy_coercion.install() is True  # installed when the app loaded; a second call keeps it
    patched = typer.core.build_runtime_param
    assert getattr(patched, "_gitops_dora_lazy", False)
    assert lazy_coercion.typer_builder() is not patched


def test_every_option_of_every_command_coerces_as_typer_does() -> None:
    root = typer.main.get_command(app)
    own = lazy_coercion.typer_builder()
    lazy = typer.core.build_runtime_param
    checked = choices = 0
    reached = set()
    for command in _commands(root):
        reached.add(command.name)
        ctx = Context(command)
        for param in command.params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None:
                continue
            for value in _samples(descriptor.annotation, param.default):
                if (param.multiple or param.nargs == -1) and isinstance(value, str):
                    value = (value, value + "2") if value else ()
                got, want = _outcome(lazy, param, value, ctx), _outcome(own, param, value, ctx)
                assert got == want, (command.name, param.name, value)
                checked += 1
            if isinstance(descriptor.annotation, type) and issubclass(descriptor.annotation, Enum):
                choices += 1
    # every command's options were reached (the root alone has four)
    assert {"metrics", "deployments", "report", "git", "k8s", "import"} <= reached, reached
    assert checked > 900 and choices >= 5, (checked, choices)


def test_a_text_option_needs_no_adapter_and_a_number_gets_typers() -> None:
    root = typer.main.get_command(app)
    metrics = root.commands["metrics"]  # type: ignore[attr-defined]
    ctx = Context(metrics)
    by_name = {p.name: p for p in metrics.params}
    for name, given, want in (("since", "2026-01-01", "2026-01-01"),
                              ("service", ("api", "web"), ["api", "web"]),
                              ("fmt", "json", by_name["fmt"].type_descriptor.annotation("json"))):
        param = typer.core.build_runtime_param(by_name[name].type_descriptor)
        assert param.coerce(given, param=by_name[name], ctx=ctx) == want
        assert "_real" not in param.__dict__, name  # no adapter was built
    benchmark = typer.core.build_runtime_param(by_name["benchmark"].type_descriptor)
    assert benchmark.coerce("2024", param=by_name["benchmark"], ctx=ctx) == 2024
    assert "_real" in benchmark.__dict__
    with pytest.raises(BadParameter, match="valid integer"):
        benchmark.coerce("twenty", param=by_name["benchmark"], ctx=ctx)


def test_a_path_needs_no_adapter() -> None:
    """Typer's path adapter imported pydantic to make a Path of the text (0.13-0.16 s of every
    `import FILE`, `assess --answers`, `--config` run); the lazy one makes it as Typer would."""
    root = typer.main.get_command(app)
    command = root.commands["import"]  # type: ignore[attr-defined]
    ctx = Context(command)
    files = next(p for p in command.params if p.name == "files")
    param = typer.core.build_runtime_param(files.type_descriptor)
    assert param.coerce(("a.csv", "dir/b.json"), param=files, ctx=ctx) == [Path("a.csv"), Path("dir/b.json")]
    assert "_real" not in param.__dict__
    config = next(p for p in root.params if p.name == "config")
    single = typer.core.build_runtime_param(config.type_descriptor)
    assert single.coerce("gitops-dora.yaml", param=config, ctx=Context(root)) == Path("gitops-dora.yaml")
    assert "_real" not in single.__dict__
