"""Hyperparameter tuning: search spaces, budget profiles and the paper's two-stage procedure."""
