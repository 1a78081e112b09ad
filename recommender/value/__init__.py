"""Customer value (placeholder docstring, written at the end)."""
