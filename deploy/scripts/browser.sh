#!/usr/bin/env bash
# The browser the front-desk tests drive (tests/integration/frontdesk): Debian's chromium and
# chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver).
#
#   browser.sh install   install them if missing (apt)
#   browser.sh status    print their versions
set -euo pipefail
LOG_PREFIX=browser  # used by log()/die() in lib.sh
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
    install) apt_ensure chromium chromium-driver ;;
    status) /usr/bin/chromium --version && /usr/bin/chromedriver --version ;;
    *) echo "usage: $0 {install|status}" >&2; exit 2 ;;
esac
