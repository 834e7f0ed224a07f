#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/e2e/test-standin-hvac.py against a real OpenBao (a private one: the checks rewrite mounts,
# auth config and policies, and seal it): where the stand-in and the real server answer
# differently, the stand-in is fixed (tests/standin/README.md, "differences found").
exec /usr/bin/python3 "$(dirname "$0")/test-standin-hvac.py" --target real
