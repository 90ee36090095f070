"""emon: electronic monitoring and proximity alerts for court-ordered bans."""

__version__ = "0.1.0"
