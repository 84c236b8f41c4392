"""The result store: every finished run, keyed by what determines its numbers."""
