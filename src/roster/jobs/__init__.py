"""Work that takes time: imports with progress, undo, purge."""
