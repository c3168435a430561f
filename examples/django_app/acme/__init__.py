"""A small Django project with nextmonth_health wired in (see ``wsgi.py`` and ``settings.py``)."""
