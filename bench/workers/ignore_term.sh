#!/bin/bash
# A command that ignores SIGTERM (its sleeps inherit the ignored signal too)
# and writes its pid once it is running.
trap '' TERM
echo $$ > "$1.tmp" && mv "$1.tmp" "$1"
while :; do sleep 1; done
