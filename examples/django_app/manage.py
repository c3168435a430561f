#!/usr/bin/env python
"""The Django demo's manage.py:  python examples/django_app/manage.py runserver 127.0.0.1:8002 --noreload"""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acme.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
