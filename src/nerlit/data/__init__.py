"""Corpora in, padded batches out: readers, tag schemes, subword encoding, the DataModule."""
