"""One error type for everything a user can get wrong: the CLI prints its message on one line."""


class EdgeavError(Exception):
    """A problem with the user's input or environment, stated as `what is wrong — how to fix it`."""

    def __init__(self, what: str, fix: str = "") -> None:
        self.what, self.fix = what, fix
        super().__init__(f"{what} — {fix}" if fix else what)

    def __reduce__(self):  # what and fix stay apart when the error crosses a process boundary
        return type(self), (self.what, self.fix)
