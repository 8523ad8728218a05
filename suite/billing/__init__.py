"""The billing area's suite: its declaration (area.py), checks, price cases and planted bugs."""
