"""The national axis mock: a store-and-forward hub speaking the VXP protocol."""
