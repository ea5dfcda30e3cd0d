#!/bin/bash
# A command that crashes: stamps its start and its crash (bash's own clock, no fork),
# runs $2 seconds, exits 1. Used under every supervisor alike.
echo "start $EPOCHREALTIME" >> "$1"
sleep "${2:-0.3}"
echo "crash $EPOCHREALTIME" >> "$1"
exit 1
