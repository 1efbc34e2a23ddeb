"""runbot: a chat-bot assistant for running communities."""

__version__ = "0.1.0"
