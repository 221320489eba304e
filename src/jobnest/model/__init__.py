"""The pure core: definitions, graphs, expansion, plans, run states and schedules.

Nothing in here touches the clock, the disk or a process.
"""
