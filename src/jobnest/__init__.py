"""jobnest: a dependency-based job scheduler with jobs inside jobs."""

__version__ = "0.1.0"
