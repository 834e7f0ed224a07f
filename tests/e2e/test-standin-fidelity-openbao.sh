#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/e2e/test-standin-fidelity.py with the stand-in in its "openbao" flavour: every check
# expects what the real OpenBao 2.4 answers (test-real-vault-fidelity.sh runs the same checks
# against the real server), so the stand-in is held to the real server's answers.
exec /usr/bin/python3 "$(dirname "$0")/test-standin-fidelity.py" --flavor openbao
