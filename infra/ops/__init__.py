"""`ops`: the command the runbooks call."""
