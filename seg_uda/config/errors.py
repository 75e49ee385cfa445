"""The one exception type raised for bad configuration."""


class ConfigError(ValueError):
    """A config file, key or value is invalid; the message names it and the valid options."""
