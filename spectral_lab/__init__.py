"""spectral_lab: record every output of Deep Image Prior runs and measure their spectral bias."""

__version__ = "0.1.0"
