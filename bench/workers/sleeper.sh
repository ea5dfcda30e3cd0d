#!/bin/bash
# An idle supervised command for the references (supervisord, pm2).
exec sleep 100000
