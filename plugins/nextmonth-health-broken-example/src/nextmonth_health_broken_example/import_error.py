"""Fails at import, as a plugin whose dependency is not installed does."""

raise ImportError("nextmonth_health_broken_example needs 'a_library_that_is_not_installed'")
