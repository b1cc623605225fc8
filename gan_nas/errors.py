"""Errors that mean "the user gave bad input".

The CLI turns any :class:`GanNasError` into one line ``error: ...`` on stderr
and exit code 2. Anything else is a bug and keeps its traceback.
"""


class GanNasError(Exception):
    """Bad input from the user: a path, a file, a config, a genome."""


class DataError(GanNasError):
    """A dataset cannot be found, or a file of it is corrupt."""


class ConfigError(GanNasError):
    """A config file or a ``--set`` override is malformed."""


class GenomeError(GanNasError):
    """A genome breaks a rule; the message names the gene and the rule."""


class FitnessError(GanNasError):
    """Samples cannot be scored (wrong shape, too few) or a classifier cannot be trained."""


class RunDirError(GanNasError):
    """A run directory is missing, damaged, or locked by another search."""


class CheckpointError(RunDirError):
    """A checkpoint in a run directory is missing or damaged: the run's fault, not a genome's."""
