"""The bundled plugins: the four checks, the log sink, the cinematic renderer.

They are ordinary plugins, registered through the same hooks as third-party ones.
"""

DEFAULT_PLUGINS: tuple[str, ...] = (
    "nextmonth_health.plugins.api_errors",
    "nextmonth_health.plugins.page_load",
    "nextmonth_health.plugins.sessions",
    "nextmonth_health.plugins.uploads",
    "nextmonth_health.plugins.log_sink",
    "nextmonth_health.plugins.cinematic",
)
