"""Judge: a site's buckets in, incident transitions out, calmly.

:mod:`.runner` runs the pass (lease a site, read it, run the checks, hand readings on) and
the loops that repeat it. Checks see a site through :mod:`.windows` (kept warm between
passes by :mod:`.cache`), weigh it with :mod:`.stats` and :mod:`.evidence`, and
:mod:`.incidents` turns their readings into opened, escalated and resolved incidents.
:mod:`.checks` and :mod:`.probe_check` are the interfaces a plugin's check implements.
"""
