"""Commissioning at the site: checklist templates as data and the pure rules over a filled-in checklist."""
