"""A handler module whose import fails, like a Lambda whose init phase raises."""

raise ImportError("this module cannot be imported: missing dependency 'nonexistent'")
