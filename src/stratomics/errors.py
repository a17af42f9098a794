"""The one exception type for problems in the user's input."""


class StratomicsInputError(Exception):
    """A problem with the user's configuration or input files.

    The message names the file, the row or column, the offending value and what to do.
    The workflow prints it without a traceback; programming errors keep their traceback.
    """
