#!/usr/bin/env bash
# A shell campaign that speaks TAP, supervised with no other change:
#
#   campaign-tui run -- ./examples/tap/campaign.sh items.txt
#
# The supervisor reads the TAP on stdout: 1..N gives the total, each ok / not ok
# an item's outcome (results.jsonl, checkpoint, progress). "# Subtest: NAME"
# before each test tells it which item is in flight, so one that crashes the
# campaign twice in a row is skipped after that: it arrives in
# CAMPAIGN_SKIP_ITEMS (one item a line), and this script honours it.
set -u
items_file=${1:-/dev/stdin}
mapfile -t items < "$items_file"

test_one() {           # replace with the real test of one item
    sleep 0.2
    [ -n "$1" ]
}

echo "TAP version 14"
echo "1..${#items[@]}"
n=0
for item in "${items[@]}"; do
    n=$((n + 1))
    if grep -Fxq -- "$item" <<<"${CAMPAIGN_SKIP_ITEMS:-}"; then
        echo "ok $n - $item # SKIP crashed the campaign twice"
        continue
    fi
    echo "# Subtest: $item"
    if output=$(test_one "$item" 2>&1); then
        echo "ok $n - $item"
    else
        echo "not ok $n - $item"
        printf '  ---\n  message: %s\n  ...\n' "$(printf '%s' "$output" | head -n 1 | tr -d "'")"
    fi
done
