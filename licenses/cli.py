"""Command-line helpers shared by the management commands that take a license key.

A key may start with ``-`` (keys issued before SPEC section 2 said otherwise keep working), and
argparse reads ``--license-key -abc`` as a missing value followed by an unknown option. Commands
that take a key accept both ``--license-key=-abc`` (argparse's own form) and ``--license-key
-abc``: the value after a key option is glued to it before argparse sees it."""

from __future__ import annotations

from collections.abc import Sequence

KEY_OPTIONS = ("--license-key",)


def glue_option_values(argv: Sequence[str], options: Sequence[str] = KEY_OPTIONS) -> list[str]:
    """``["--license-key", "-abc"]`` -> ``["--license-key=-abc"]``; everything else unchanged."""
    out: list[str] = []
    i = 0
    args = list(argv)
    while i < len(args):
        arg = args[i]
        if arg in options and i + 1 < len(args):
            out.append(f"{arg}={args[i + 1]}")
            i += 2
        else:
            out.append(arg)
            i += 1
    return out


class KeyOptionMixin:
    """For a ``BaseCommand``: ``--license-key VALUE`` works whatever VALUE starts with, from the
    shell (``run_from_argv``) and from ``call_command`` alike."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)  # type: ignore[misc]  # a BaseCommand mixin
        parse_args = parser.parse_args

        def glued(args=None, namespace=None):
            return parse_args(None if args is None else glue_option_values(args), namespace)

        parser.parse_args = glued
        return parser
