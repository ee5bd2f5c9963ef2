"""The silent default for the data layer's ``progress`` callbacks (the CLI passes a bar)."""


class NoProgress:
    """``no_progress(length=..., label=...)``: a context manager whose ``update`` does nothing."""

    def __init__(self, length=None, label=""):
        self.length = length

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        pass


no_progress = NoProgress
