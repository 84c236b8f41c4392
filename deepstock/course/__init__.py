"""Course use: the assignments' self-checks."""
