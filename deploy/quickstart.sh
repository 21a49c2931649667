#!/usr/bin/env bash
# The quickstart: makes sure RabbitMQ runs (installing it if needed), then runs the whole
# pipeline in one process on a synthetic population and prints what it decided.
# Storage is an embedded SQLite file, so PostgreSQL is not needed.
#
#   bash deploy/quickstart.sh        200 applications
#   bash deploy/quickstart.sh 1000   any other number
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PRH_SKIP_POSTGRES=1 bash deploy/ensure-services.sh

exec cargo run --release --locked -- demo --applications "${1:-200}"
