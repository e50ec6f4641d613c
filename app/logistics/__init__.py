"""Logistics: returnable crates now; shipments, legs and custody with the shipping work."""
