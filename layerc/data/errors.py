"""The one exception the data loaders raise."""


class DataError(Exception):
    """Data that cannot be loaded or does not fit the model; the message is one line for the user."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class Located(DataError):
    """A data error that belongs to one key of the `data:` section (`path`, as in the spec)."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path
