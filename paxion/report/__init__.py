"""What the command line shows: tables built from the library's results."""
