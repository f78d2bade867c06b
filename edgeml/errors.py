"""The one error family edgeml raises at its users."""


class EdgeMLError(Exception):
    """Base class of every error edgeml raises on purpose."""


class ModelFormatError(EdgeMLError):
    """The model file is malformed: names what is wrong and where (offset, tensor, op)."""


class UnsupportedOpError(EdgeMLError):
    """The model uses an op, op version or tensor type the runtime does not implement."""


class InputError(EdgeMLError, ValueError):
    """The caller passed input of the wrong shape, dtype or index."""
