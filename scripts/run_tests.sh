#!/usr/bin/env bash
# Start the test services, run pytest against them, always stop them. Extra args go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
venv="${VENV:-$here/.venv}"
export VENV="$venv"
# Own ports and state so a developer's running services are left alone.
export FOLEY_TEST_REDIS_PORT="${FOLEY_TEST_REDIS_PORT:-56380}"
export FOLEY_TEST_PG_PORT="${FOLEY_TEST_PG_PORT:-55433}"
export FOLEY_TEST_S3_PORT="${FOLEY_TEST_S3_PORT:-55001}"
export FOLEY_SERVICES_DIR="${FOLEY_SERVICES_DIR:-$here/.services-test}"
trap 'scripts/services.sh stop' EXIT
scripts/services.sh start
# shellcheck disable=SC1091
source "$FOLEY_SERVICES_DIR/env"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
# Tests never read the developer's own settings.
unset FOLEY_DATABASE_URL FOLEY_BROKER_URL FOLEY_STORE FOLEY_S3_ENDPOINT_URL FOLEY_ENV_FILE
set +e
"$venv/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "run_tests: pytest collected no tests" >&2; fi
exit "$rc"
