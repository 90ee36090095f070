"""A case leaving emon: export and import in an open format, and retention of closed cases' positions."""
