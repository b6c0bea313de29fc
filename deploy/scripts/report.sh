#!/usr/bin/env bash
# Evidence report tooling: `report.sh install` installs poppler-utils (pdftoppm, pdftotext),
# which the report tests use to render the PDF to PNG pages and text. The report itself needs
# no binaries (matplotlib and fpdf2 are Python packages from pyproject.toml).
set -euo pipefail
LOG_PREFIX=report
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
    install)
        command -v pdftoppm >/dev/null && command -v pdftotext >/dev/null || apt_ensure poppler-utils
        ;;
    *)
        echo "usage: $0 install" >&2
        exit 2
        ;;
esac
