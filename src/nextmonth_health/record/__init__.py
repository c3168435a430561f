"""Record: what happens inside a site, at near-zero cost on the request path.

:mod:`.recorder` takes every ``record_*`` call and flushes buckets to the store off the
request path; :mod:`.routes` says which requests keep a key of their own and the area
people see them in; :mod:`.visitors` tells apart the people a host did not name.
"""
