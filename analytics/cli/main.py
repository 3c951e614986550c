"""Entry point: registers every ``cmd_*`` module and turns errors into one line on stderr."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import analytics.cli as cli_pkg
from analytics.cli.app import app
from analytics.errors import UserError


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{cli_pkg.__name__}.{info.name}")


_register_commands()


def run(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="gitops-dora", standalone_mode=True)
    except SystemExit:
        raise
    except UserError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the CLI contract is one line, no traceback
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"error: {type(exc).__name__}: {first} (run with --debug for a traceback)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
