"""Encoders and heads: resolving pretrained weights, the LightningModule, optimizer factories."""
