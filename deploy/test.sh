#!/usr/bin/env bash
# Runs PRH's whole test suite against a real RabbitMQ and a real PostgreSQL on this
# machine (deploy/ensure-services.sh starts or installs them first).
#
#   bash deploy/test.sh                 every test of the workspace
#   bash deploy/test.sh some_test_name  extra arguments go to the test binaries (filters)
#
# Environment:
#   PRH_TEST_DATABASE_URL  default postgres://postgres@127.0.0.1:5432/test
#   PRH_TEST_AMQP_URL      default amqp://guest:guest@127.0.0.1:5672/%2f
#   PRH_SKIP_SERVICES=1    use services that are managed elsewhere; start nothing
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash deploy/ensure-services.sh

export PRH_TEST_DATABASE_URL="${PRH_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export PRH_TEST_AMQP_URL="${PRH_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

# Two test threads: the end-to-end tests each run a broker-backed pipeline.
exec cargo test --workspace --all-targets --locked -- --test-threads=2 "$@"
