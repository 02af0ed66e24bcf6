"""The one error type of the config: it always names the field it is about."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad config value.

    Args:
        field (`str`): dotted path of the field (``"network.dim"``,
            ``"dataset.datasets[0].subsets[1].num_repeats"``); ``""`` for the file as a whole.
        message (`str`): what is wrong and, where possible, what to write instead.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)

    def within(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` put in front of the field path."""
        if not prefix:
            return self
        if not self.field:
            return ConfigError(prefix, self.message)
        sep = "" if self.field.startswith("[") else "."
        return ConfigError(f"{prefix}{sep}{self.field}", self.message)
