"""The full-screen monitor: ``run_tui`` in :mod:`campaign_tui.tui.app`.

Data flows one way: the watcher reads the state directory into a Snapshot,
the screen judges it and hands the pieces to widgets, which only render.
"""
