"""Loads suite_profile's compile log into every Python process (see suite_profile.py)."""

import os

if os.environ.get("SUITE_PROFILE"):
    import suite_profile

    suite_profile.install()
