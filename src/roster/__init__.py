"""Roster: the user directory and provisioning service behind a workplace app."""

__version__ = "0.1.0"
