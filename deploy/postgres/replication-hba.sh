#!/bin/bash
# Runs once when the primary's data directory is created: let the replica stream WAL with the
# same password authentication as everything else.
set -e
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
