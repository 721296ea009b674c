#!/bin/sh
# Regenerates golden/ after an intended change to protoc-gen-sprpc.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
wrapper=$(mktemp)
trap 'rm -f "$wrapper"' EXIT
printf '#!/bin/sh\nexec %s %s/../protoc-gen-sprpc.py "$@"\n' "$py" "$here" > "$wrapper"
chmod +x "$wrapper"
cd "$here/proto"
protoc --plugin=protoc-gen-sprpc="$wrapper" -I. --sprpc_out="$here/golden" \
	--sprpc_out=lang=python:"$here/golden" --sprpc_out=lang=ts:"$here/golden" demo/v1/echo.proto
echo "updated $here/golden"
