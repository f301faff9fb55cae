"""Cross-cutting code shared by every service of the catalog platform.

Services import from here and never from each other.
"""
