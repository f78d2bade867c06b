"""The one error family edgeml raises at its users."""


class EdgeMLError(Exception):
    """Base class of every error edgeml raises on purpose."""


class ModelFormatError(EdgeMLError):
    """The model file is malformed: names what is wrong and where (offset, tensor, op)."""


class UnsupportedOpError(EdgeMLError):
    """The model uses an op, op version or tensor type the runtime does not implement."""


class InputError(EdgeMLError, ValueError):
    """The caller passed input of the wrong shape, dtype or index."""


class DataError(EdgeMLError):
    """Training data that cannot be used: missing, empty, mismatched or not numeric."""


class TrainingError(EdgeMLError):
    """A model name, model file or optimization option the training front-end cannot use."""
