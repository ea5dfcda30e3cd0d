"""The fault campaign: kills, hangs, failing disks, hostile state, signals, intruders."""
