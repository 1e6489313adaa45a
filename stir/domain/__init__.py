"""What Stir serves and when: the tiers and the served-table declarations.

Plain data and rules, no Prefect and no I/O: every other layer reads them.
"""
