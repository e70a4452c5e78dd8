"""One small exception hierarchy, so callers (and the CLI) can catch what they expect."""


class ExtractorError(Exception):
    """Base class of every error this package raises on purpose."""


class ParseError(ExtractorError):
    """Input is not PubMed XML we can read (not XML, HTML, truncated, unsafe, unknown DTD)."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.source, self.line, self.column = source, line, column
        where = source or "<input>"
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")
        self.message = message


class FetchError(ExtractorError):
    """NCBI (or the stand-in at --base-url) could not give us what we asked for."""


class StoreError(ExtractorError):
    """The database refused an operation (e.g. a write statement in a read-only query)."""


class RuleError(ExtractorError):
    """A rule file under extractor/rules is malformed or one of its examples fails."""
