"""Orders as legal objects: kinds and their legal limits, the reminder/expiry lifecycle, police lookup
and violation reports to the prosecutor. The core (``legal``, ``lifecycle``, ``plain``) is pure."""
