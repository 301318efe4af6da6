"""HTTP: the application factory and its parts."""
