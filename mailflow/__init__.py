"""mailflow: the automatic e-mails that follow a purchase, from a shop's exports."""

__version__ = "0.1.0"
