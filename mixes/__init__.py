"""Mixture sampling, regression fit, constrained optimisation and the mix file format."""
