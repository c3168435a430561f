"""The WSGI entry point: Django's application wrapped in nextmonth_health's middleware.

``runserver`` and any WSGI server (gunicorn ``acme.wsgi:application``) serve this.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acme.settings")

from django.core.wsgi import get_wsgi_application

from acme.views import make_application

application = make_application(get_wsgi_application())
