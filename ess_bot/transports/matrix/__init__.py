"""The Matrix transport: ``MatrixBot`` (the bot on a homeserver), ``MatrixTransport`` and the
conversion of events (``to_incoming``, ``build_content``)."""

from ess_bot.transports.matrix.convert import build_content, to_incoming
from ess_bot.transports.matrix.login import Credentials, FatalMatrixError, RepeatedWarnings
from ess_bot.transports.matrix.sync import SYNC_TOKEN, UNDECRYPTED, WATERMARK
from ess_bot.transports.matrix.transport import MatrixBot, MatrixTransport, run_matrix_bot

__all__ = ["Credentials", "FatalMatrixError", "MatrixBot", "MatrixTransport", "RepeatedWarnings", "SYNC_TOKEN",
           "UNDECRYPTED", "WATERMARK", "build_content", "run_matrix_bot", "to_incoming"]
