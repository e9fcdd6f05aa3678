"""Lightning callbacks nerlit adds to the stock ones."""
