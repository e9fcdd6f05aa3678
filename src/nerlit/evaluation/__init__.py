"""Entity-level scoring at word level, and the reports written after testing."""
