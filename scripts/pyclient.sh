#!/usr/bin/env bash
# Creates a Python virtualenv with the real OpenStack clients the API tests drive:
# python-congressclient 2.0.1 and python-openstackclient (`openstack congress ...`), from PyPI.
# Does nothing when DIR already has them. ~15 s.
#
# usage: scripts/pyclient.sh DIR
set -euo pipefail
dir=${1:?usage: pyclient.sh DIR}
if [ -x "$dir/bin/openstack" ] && "$dir/bin/python" -c 'import congressclient' 2>/dev/null; then
  exit 0
fi
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check \
  'python-congressclient==2.0.1' 'python-openstackclient<8' 'setuptools<81'
"$dir/bin/python" -c 'import congressclient.v1.client' >/dev/null
echo "python clients: $dir"
