"""Tools: the command line, the book driver and performance figures."""
