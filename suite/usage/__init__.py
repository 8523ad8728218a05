"""The usage area's suite: its declaration (area.py), checks, corpus, fuzzing and planted bugs."""
