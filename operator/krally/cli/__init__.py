"""The ``krally`` command line.

Engine commands (no cluster needed): ``run``, ``validate``, ``convert``, ``report``, ``rbac``,
``plugin``.
The cluster commands (``operator``, ``runner``, ``hook``, ``crd``) are registered by
``krally.kube.commands``.
"""

from __future__ import annotations

from collections.abc import Sequence

from krally.cli.output import EXIT_INVALID, EXIT_OK, print_task_errors
from krally.cli.parser import build_parser
from krally.errors import KrallyError


def main(argv: Sequence[str] | None = None) -> int:
    """``krally``: parse the command line and run the command; its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KrallyError as exc:
        print_task_errors(exc)
        return EXIT_INVALID
    except BrokenPipeError:
        return EXIT_OK
