"""The rules of the directory: pure Python, no I/O, no framework."""
