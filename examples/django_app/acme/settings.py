"""Settings of the Django demo: no database, no apps — just views and the route middleware."""

import os
import secrets

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)  # never a published one
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "acme.urls"
WSGI_APPLICATION = "acme.wsgi.application"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
MIDDLEWARE = [
    # Tells the WSGI middleware the matched route ("/bookings/<int:pk>") and the user.
    "nextmonth_health.wsgi.DjangoRouteMiddleware",
]
USE_TZ = True
TIME_ZONE = "UTC"
