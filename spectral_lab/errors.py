"""Exception types. The CLI turns every `SpectralLabError` into one line and a nonzero exit."""


class SpectralLabError(Exception):
    """Base class of every error spectral_lab raises on purpose."""


class ConfigError(SpectralLabError, ValueError):
    """A parameter or combination of parameters is invalid."""


class SignalError(SpectralLabError, ValueError):
    """A signal or image cannot be made or read."""


class TrajectoryError(SpectralLabError):
    """A trajectory file is missing, unreadable, of another layout or of a newer version."""


class AnalysisError(SpectralLabError, ValueError):
    """An analysis cannot run on the given data (too few runs, wrong kind of signal, ...)."""


class NoReferenceError(AnalysisError):
    """The file has no clean reference signal (recorded from a degraded image alone)."""


class DivergedError(SpectralLabError):
    """The optimisation diverged: its loss became NaN or inf ("divergence" in this lab is the inter-run ε)."""


class WriteError(SpectralLabError):
    """Writing the trajectory file failed (full disk, I/O error)."""


class ExportError(SpectralLabError, ValueError):
    """An output cannot be written where or as asked (an unsupported format, an existing file)."""
