"""`paxion demo`: the whole study on the built-in world, with its report."""
