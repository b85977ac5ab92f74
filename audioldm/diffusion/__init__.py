"""Noise schedules, guidance and samplers (plain torch, kept out of the networks)."""
