"""hookd: a self-hosted webhook delivery daemon."""

__version__ = "0.1.0"
