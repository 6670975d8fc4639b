"""The command line's argument parser: no silent prefix matching, and help where a flag is wrong.

argparse by default takes `--epoch 2` as `--epochs` without a word, and
reports `--trian x` under the top-level usage ("unrecognized arguments")
with no hint. Here prefixes are not matched, an unknown flag is reported
by the subcommand it was given to, with its usage and the closest flag it
has ("did you mean --train?"), `--verbose` works before or after the
subcommand, and a subcommand's options may come anywhere among its
positionals (`predict RUN --top-k 2 "great film"`).
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
        self._intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        # argparse consumes a command's positionals in one go, so plain parsing
        # takes `RUN` for PATH and then refuses "great film" after `--top-k 2`.
        # Intermixed parsing reads the options first, then the positionals; it
        # cannot run on a parser with subcommands (argparse refuses), and it
        # calls this method itself, hence the guard.
        if self._intermixing or self._has_subcommands():
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False

    def _has_subcommands(self) -> bool:
        return any(isinstance(action, argparse._SubParsersAction) for action in self._actions)

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


def positive_int(text: str) -> int:
    """An argparse `type`: an integer of at least 1 (`--top-k 0` is refused, not read as "all")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {value}")
    return value
