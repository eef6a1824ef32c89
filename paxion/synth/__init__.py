"""The built-in world: procedurally rendered action clips written as SSv2-format data."""
