"""The report's one error type: input it cannot analyse without being wrong."""


class ReportInputError(ValueError):
    """Bad input (missing column, unknown name, duplicate result...); the message is one
    line naming the file, the column or value, and what was expected."""
