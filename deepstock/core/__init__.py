"""The bottom layer: parameter checks and file helpers that every other layer uses."""
