#!/usr/bin/env bash
# The aarch64 test run: edgeml cross-compiled for aarch64 and tested under qemu-user, on a plain-NEON core and on a
# core with the dot-product and i8mm extensions (see ci/aarch64/README.md).  Needs root on Debian (apt-get) and the
# host's own build of edgeml (pip install -e .); everything it fetches is cached under ~/.cache/edgeml/aarch64, so
# a second run only rebuilds what changed and runs the tests.  Any failure in the set-up or the tests exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/aarch64/setup.sh
exec "$HOST_PYTHON" ci/aarch64/run_tests.py --root "$ROOT" --site "$SITE" --build "$CACHE/build"
