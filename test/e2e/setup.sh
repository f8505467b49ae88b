#!/usr/bin/env bash
# Installs what the end-to-end test needs, once per machine (idempotent, a few minutes the first
# time): Debian's chromium and the build deps of code-server's native modules, and code-server
# 4.100.3 (the newest that runs on node 20) into $E2E_HOME (default ~/.cache/bert-pruner-e2e).
# code-server's postinstall fails here, so its steps are done by hand, as measured on this machine.
# Heavy steps run with `nice` so they do not starve other work on a shared machine.
set -euo pipefail

E2E_HOME="${E2E_HOME:-$HOME/.cache/bert-pruner-e2e}"
CS_VERSION=4.100.3
CS="$E2E_HOME/node_modules/code-server"
DONE="$E2E_HOME/.ready-$CS_VERSION"

if [ -f "$DONE" ] && command -v chromium >/dev/null; then
  echo "e2e setup: ready ($CS)"
  exit 0
fi

if ! command -v chromium >/dev/null || ! command -v rg >/dev/null || ! dpkg -s libkrb5-dev libxkbfile-dev libsecret-1-dev pkg-config >/dev/null 2>&1; then
  echo "e2e setup: apt packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  nice -n 19 apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium ripgrep libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config >/dev/null
fi

mkdir -p "$E2E_HOME"
cd "$E2E_HOME"
[ -f package.json ] || echo '{"name":"bert-pruner-e2e","private":true}' > package.json
if [ ! -d "$CS/lib/vscode" ]; then
  echo "e2e setup: code-server $CS_VERSION"
  nice -n 19 npm install --no-save --ignore-scripts --no-audit --no-fund "code-server@$CS_VERSION" >/dev/null
fi

cd "$CS/lib/vscode"
if [ ! -d node_modules/@parcel/watcher ]; then
  echo "e2e setup: vscode server modules"
  nice -n 19 npm install --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null
fi
for m in kerberos @parcel/watcher node-pty @vscode/spdlog native-watchdog @vscode/deviceid; do
  if [ -d "node_modules/$m" ] && [ -z "$(find "node_modules/$m" -name '*.node' -path '*Release*' -print -quit)" ]; then
    echo "e2e setup: rebuild $m"
    (cd "node_modules/$m" && nice -n 19 npx --yes node-gyp rebuild >/dev/null 2>&1) || echo "e2e setup: warning: $m did not build"
  fi
done
mkdir -p node_modules/@vscode/ripgrep/bin
cp -f "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
[ -e node_modules.asar ] || ln -s node_modules node_modules.asar
(cd bin/remote-cli && [ -e code-server ] || ln -s code-linux.sh code-server)
(cd bin/helpers && [ -e browser.sh ] || ln -s browser-linux.sh browser.sh)
if [ ! -d extensions/node_modules ]; then
  echo "e2e setup: built-in extensions"
  (cd extensions && nice -n 19 npm install --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
fi
# code-server loads argon2 at start (npm hoists it next to code-server). Its install script is
# node-pre-gyp, which downloads; build it with node-gyp and the variables node-pre-gyp would pass.
ARGON2="$(cd "$CS" && node -p "require('path').dirname(require.resolve('argon2/package.json'))")"
if [ -z "$(find "$ARGON2/lib/binding" -name argon2.node 2>/dev/null)" ]; then
  echo "e2e setup: build argon2"
  (cd "$ARGON2" && nice -n 19 npx --yes node-gyp rebuild --module_name=argon2 --module_path="$ARGON2/lib/binding/napi-v3" \
    --napi_build_version=3 --node_napi_label=napi-v3 --node_abi_napi=napi >/dev/null 2>&1)
fi
touch "$DONE"
echo "e2e setup: ready ($CS)"
