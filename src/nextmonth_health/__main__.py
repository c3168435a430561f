"""``python -m nextmonth_health``: the ``nextmonth-health`` command line."""

from nextmonth_health.cli import main

if __name__ == "__main__":
    main()
