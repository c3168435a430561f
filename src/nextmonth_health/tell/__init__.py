"""Tell: what the people affected and the admin are shown, and when not.

:mod:`.notices` answers "is this area hurting?" for the overlay, :mod:`.alerts` writes the
admin's alert, :mod:`.sinks` hands transitions to the admin panel, email and webhooks, and
:mod:`.quiet` holds alerts back during maintenance windows and silences.
"""
