"""What an import does with its list of users (its own module: the command line's options name
it without loading the import's rules)."""

from enum import StrEnum


class Mode(StrEnum):
    ADD = "add"  # add and update the listed users; keep the others
    REPLACE = "replace"  # the list is the whole directory: users not on it are removed
