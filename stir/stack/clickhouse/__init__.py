"""The embedded ClickHouse: the chDB engine behind ClickHouse's own wire protocols.

chDB runs the ClickHouse engine in-process and allows one session per process, so one server
process owns it (`engine.Engine`) and every protocol front end (`http`, and `native` later)
serialises its queries through that engine.
"""
