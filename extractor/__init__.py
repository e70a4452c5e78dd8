"""extractor: clinical-trial results from PubMed abstracts into a traceable SQLite database.

Data flows one way: ids -> fetch -> XML -> parse -> Article -> extract -> Measurement ->
store -> report. Each stage is a function of this package, usable without the CLI.
"""
__version__ = "0.1.0"

__all__ = ["__version__"]
