"""catalogctl: a terminal client for the catalog platform."""

__version__ = "0.1.0"
