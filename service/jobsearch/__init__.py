"""The job-search API: JSearch and TheirStack behind one cached, hardened endpoint."""

__version__ = "1.0.0"
