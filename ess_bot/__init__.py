"""ess-bot: the chat assistant of the ESS support network of Bourgogne-Franche-Comté."""

__version__ = "0.1.0"
