"""`UserError`: the base of every error whose message tells a person what to change, and how entry points end on one.

Each such error keeps its own name, module and built-in base (`SettingError` is still a `ValueError`,
`DatasetNotFoundError` a `FileNotFoundError`), so existing `except` clauses work; `UserError` only
marks it as one whose message says all a user needs. `train.py` and `evaluate.py` both hand every
error they catch to `exit_on_user_error`, which ends the process with that message on one line and
exit status 1 instead of a traceback.
"""

import sys


class UserError(Exception):
    """A setting, file or dataset that cannot work as given; the message names it and the fix."""


def exit_on_user_error(error: BaseException) -> None:
    """For a `UserError`: print `error: <message>` to stderr and exit with status 1; otherwise return."""
    if isinstance(error, UserError):
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
