"""The command line's argument parser: no silent prefix matching, and help where a flag is wrong.

argparse by default takes `--epoch 2` as `--epochs` without a word, and
reports `--trian x` under the top-level usage ("unrecognized arguments")
with no hint. Here prefixes are not matched, an unknown flag is reported
by the subcommand it was given to, with its usage and the closest flag it
has ("did you mean --train?"), and `--verbose` works before or after the
subcommand.
"""

from __future__ import annotations

import argparse
import difflib


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` without prefix matching, with suggestions for unknown flags.

    Subcommand parsers made by `add_subparsers().add_parser` are of this
    class too.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            owner = self._subcommand_parser(parsed) or self
            owner.error(unrecognized(owner, unknown))
        return parsed

    def _subcommand_parser(self, parsed) -> argparse.ArgumentParser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices.get(getattr(parsed, action.dest, None))
        return None


def unrecognized(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """"unrecognized arguments: --trian x (did you mean --train?)", one hint per unknown flag."""
    flags = [option for action in parser._actions for option in action.option_strings
             if option.startswith("--")]
    hints = []
    for argument in unknown:
        name = argument.split("=", 1)[0]
        if not name.startswith("-"):
            continue
        close = [flag for flag in flags if flag.startswith(name) and name.startswith("--")]
        close = close or difflib.get_close_matches(name, flags, n=2, cutoff=0.75)
        if close:
            hints.append(f"{name}: did you mean {' or '.join(close[:2])}?")
        else:
            hints.append(f"{name}: not a flag of this command (see --help)")
    return f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else "")


def add_verbose(parser: argparse.ArgumentParser, *, in_subcommand: bool = False) -> None:
    """`-v/--verbose`; in a subcommand it leaves the top-level value alone unless given there."""
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if in_subcommand else False,
                        help="debug logging and TensorFlow's own messages")
