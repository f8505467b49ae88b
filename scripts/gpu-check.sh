#!/usr/bin/env bash
# GPU check: the engine's webgpu backend on a lent GPU machine (no Node.js, no network there),
# against the PyTorch CUDA yardstick (torch_gpu_bench.py, GPU_CHECK_TORCH_RUNS runs, the median;
# BERT-base also under bf16 autocast), the webgpu matmul alone (bench --matmul --precision mixed:
# TFLOP/s of tfjs's, each of our fp32 tiles, the f16-input kernel and each tensor-core candidate
# that compiled and agreed, at BERT-base's three shapes),
# BERT-base in fp32 and in mixed precision, and the real gaiic pipeline on the GPU in fp32 and in
# mixed precision (test metrics side by side), in one bounded run (under 5 minutes). Per shape it
# also prints where a replayed training step's and inference batch's GPU time goes (bench's
# gpu_profile, gpu_infer_profile: timestamps by program kind, the slowest programs, workgroups).
#
#   bash scripts/gpu-check.sh prepare   here (Debian, npm and apt reachable): build and fill .gpu-check/
#   bash scripts/gpu-check.sh [run]     on the GPU machine, .gpu-check/ carried: bench, torch, pipeline, table
#   bash scripts/gpu-check.sh local     (or --dry-run) the run flow here on lavapipe (a tiny shape and preset)
#   bash scripts/gpu-check.sh table     the table again from an earlier run's $OUT
#
# .gpu-check/ (git-ignored) holds: node.xz (this machine's node binary), debs/ (Debian's Vulkan loader
# and GL vendor-neutral libraries), torch_gpu_bench.py, engine.tar.xz (dist/cli.js + the node_modules
# it loads), gaiic2021.tar.xz (../shared/datasets/gaiic2021), wasm-run.json (the wasm gaiic run's
# run.json, when GPU_CHECK_WASM_RUN names its folder at prepare) and manifest.txt. Results and
# gpu-check.log go to $OUT (default ./gpu-check-out).
#
# Settings (environment): GPU_CHECK_SHAPES (comma list; SHAPE+mixed: --precision mixed, SHAPE+tfjs
# etc.: BERT_PRUNER_WEBGPU_MATMUL), GPU_CHECK_EXTRA (shapes benched after the pipelines while the
# budget lasts; default none, e.g. L12-H768-A12+tfjs), GPU_CHECK_STEPS, GPU_CHECK_BUDGET_S (the
# whole run's wall-time budget, default 290), GPU_CHECK_PIPELINE=0 (no pipeline),
# GPU_CHECK_PIPELINE_MIXED=0 (no mixed-precision pipeline), GPU_CHECK_PRESET (default gaiic; local:
# tiny), GPU_CHECK_LOCAL_DATA (local: demo, 400 synthetic rows, the default; gaiic, the packed rows), GPU_CHECK_TORCH_RUNS (default 3; BERT-base in the first only), GPU_CHECK_ICD (a Vulkan ICD json to use), GPU_CHECK_KEEP=1
# (keep the temporary folder), BERT_PRUNER_WEBGPU_ADAPTER (passed to the engine).
# Trimmed for mixed precision's two extra steps (issue 20): BERT-base's PyTorch figures from one run
# (the small shapes' from the median of three); no BERT-base-on-tfjs extra bench by default; the fp32 and f16 matmul tables in one engine process;
# each pipeline capped at 120 s (was 240).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACK="$ROOT/.gpu-check"
DEBS=(libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2)
# The library each package ships: on the GPU machine a package is unpacked only where it is missing.
declare -A SONAME=(
  [libvulkan1]=libvulkan.so.1 [libglvnd0]=libGLdispatch.so.0 [libglx0]=libGLX.so.0 [libegl1]=libEGL.so.1
  [libgl1]=libGL.so.1 [libopengl0]=libOpenGL.so.0 [libgles2]=libGLESv2.so.2
)
TORCH_SRC="$ROOT/../shared/anchors/torch_gpu_bench.py"
DATA_SRC="$ROOT/../shared/datasets/gaiic2021"
# Targets (issue 19): these shapes train and infer at least this fast as PyTorch CUDA fp32 eager;
# the gaiic pipeline within PIPELINE_TARGET_S from the command's start, its test metric within
# METRIC_TOL of the wasm run's.
TARGET_SHAPES=L2-H128,L4-H256 TARGET_RATIO=1.0 PIPELINE_TARGET_S=90 METRIC_TOL=0.003
# Issue 20: BERT-base (fp32) trains at least BASE_TRAIN x and infers at least BASE_INFER x PyTorch fp32 eager;
# in mixed precision it trains at least MIXED_TRAIN x PyTorch fp32 eager (the bf16-autocast ratio is
# printed too), and the mixed gaiic pipeline's test metric is within METRIC_TOL of the fp32 one's.
BASE_SHAPE=L12-H768-A12 BASE_TRAIN=0.6 BASE_INFER=0.8 MIXED_TRAIN=1.0
MIB=$((1024 * 1024))

say() { printf '%s\n' "$*"; }
ld_cache() { (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null || true; }
die() {
  say "gpu-check: error: $*" >&2
  exit 1
}
human() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
# A failed step's one-line reason: its stderr's last unindented line that names an error (not a
# stack frame), else its last non-empty line.
last_line() {
  local l
  l=$(grep -iE '^[^[:space:]].*error' "$1" 2>/dev/null | tail -n 1) || true
  [[ -n "$l" ]] || l=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1) || true
  printf '%s\n' "${l:0:300}"
}

# ---------------------------------------------------------------------------------------------
# Helpers shared by both sides: unpacking with xz / tar / dpkg, or python3 where those are missing.

unxz_to() { # FILE.xz DEST
  if command -v xz >/dev/null; then
    xz -dc "$1" >"$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

untar_xz() { # FILE.tar.xz DIR
  if command -v xz >/dev/null; then
    tar -xJf "$1" -C "$2"
  else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
  fi
}

deb_extract() { # FILE.deb DIR
  if command -v dpkg >/dev/null; then
    dpkg -x "$1" "$2"
  else # a .deb is an ar archive holding data.tar.*
    python3 - "$1" "$2" <<'PY'
import io, sys, tarfile
d = open(sys.argv[1], "rb").read(); i = 8
assert d[:8] == b"!<arch>\n", "not a .deb"
while i < len(d):
    name, size = d[i:i + 16].decode().strip(), int(d[i + 48:i + 58]); i += 60
    if name.startswith("data.tar"): tarfile.open(fileobj=io.BytesIO(d[i:i + size])).extractall(sys.argv[2])
    i += size + (size & 1)
PY
  fi
}

# ---------------------------------------------------------------------------------------------
# prepare (here)

# The engine's files: dist/cli.js, and of node_modules what it loads. Roots are the '@tensorflow/*'
# names in cli.js (tfjs is external to the bundle); each tfjs package contributes its package.json,
# its node bundle ('main') and, for wasm, its .wasm files; the requires in those bundles are followed;
# other packages (long, seedrandom, node-fetch, ...) travel whole, with their dependencies. Of the
# `webgpu` package only package.json and dist/linux-x64/dawn.node (the engine loads it by path).
engine_files() {
  node - "$ROOT" <<'JS'
const fs = require('fs'), path = require('path'), { builtinModules } = require('module');
const root = process.argv[2], files = new Set(['package.json', 'dist/cli.js']), seen = new Set();
const builtin = (m) => m.startsWith('node:') || builtinModules.includes(m.split('/')[0]);
const pkgName = (m) => m.split('/').slice(0, m.startsWith('@') ? 2 : 1).join('/');
const rel = (f) => path.relative(root, f);
function locate(name, fromDir) { // node's lookup: node_modules/NAME in fromDir and its parents
  for (let d = fromDir; d.startsWith(root); d = path.dirname(d)) {
    const p = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(p, 'package.json'))) return p;
    if (d === root) break;
  }
  return null;
}
function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules') walk(p);
    else if (e.isFile()) files.add(rel(p));
  }
}
function requires(file) {
  const src = fs.readFileSync(file, 'utf8'), out = new Set();
  for (const m of src.matchAll(/require\(\s*['"]([^'"./][^'"]*)['"]\s*\)/g)) if (!builtin(m[1])) out.add(pkgName(m[1]));
  return out;
}
function add(name, fromDir) {
  const dir = locate(name, fromDir);
  if (seen.has(dir || name)) return;
  seen.add(dir || name);
  if (!dir) return console.error(`   (not installed, not packed: ${name})`);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  files.add(rel(path.join(dir, 'package.json')));
  if (name === 'webgpu') return files.add(rel(path.join(dir, 'dist', 'linux-x64', 'dawn.node')));
  if (name.startsWith('@tensorflow/')) {
    const main = path.join(dir, pj.main || 'index.js');
    files.add(rel(main));
    if (name === '@tensorflow/tfjs-backend-wasm')
      for (const f of fs.readdirSync(path.join(dir, 'dist'))) if (f.endsWith('.wasm')) files.add(rel(path.join(dir, 'dist', f)));
    for (const r of requires(main)) add(r, dir);
  } else {
    walk(dir);
    for (const d of Object.keys(pj.dependencies || {})) if (!d.startsWith('@types/')) add(d, dir);
  }
}
const cli = fs.readFileSync(path.join(root, 'dist', 'cli.js'), 'utf8');
for (const m of new Set([...cli.matchAll(/['"](@tensorflow\/[a-z0-9-]+)['"]/g)].map((x) => x[1]))) add(m, root);
add('webgpu', root);
for (const f of [...files].sort()) console.log(f);
JS
}

prepare() {
  local t
  for t in node npm xz tar apt-get; do command -v "$t" >/dev/null || die "$t not found"; done
  [[ -f "$TORCH_SRC" ]] || die "$TORCH_SRC not found"
  mkdir -p "$PACK/debs"
  cd "$ROOT"

  say "== build (npm run build; the OpenBLAS addon is not needed on the GPU machine)"
  BERT_PRUNER_NATIVE=0 npm run build --silent

  local node_bin stamp
  node_bin=$(readlink -f "$(command -v node)")
  stamp="$(node -v) $(stat -c '%s %Y' "$node_bin")"
  if [[ -f "$PACK/node.xz" && "$(cat "$PACK/node.stamp" 2>/dev/null)" == "$stamp" ]]; then
    say "== node: $PACK/node.xz is up to date ($(node -v))"
  else
    say "== node: xz -9 of $node_bin ($(node -v), $(human "$(stat -c %s "$node_bin")"); a minute or two)"
    xz -9 -T2 -c "$node_bin" >"$PACK/node.xz.tmp"
    mv "$PACK/node.xz.tmp" "$PACK/node.xz"
    printf '%s\n' "$stamp" >"$PACK/node.stamp"
  fi

  say "== debs: apt-get download ${DEBS[*]}"
  rm -f "$PACK"/debs/*.deb
  if ! (cd "$PACK/debs" && apt-get download "${DEBS[@]}" 2>/dev/null); then
    say "   (apt-get update first)"
    apt-get update -qq
    (cd "$PACK/debs" && apt-get download "${DEBS[@]}")
  fi

  say "== torch yardstick: $TORCH_SRC"
  cp "$TORCH_SRC" "$PACK/torch_gpu_bench.py"

  say "== data: $DATA_SRC (the GPU machine has no ../shared)"
  [[ -f "$DATA_SRC/train.csv" ]] || die "$DATA_SRC/train.csv not found"
  tar -C "$(dirname "$DATA_SRC")" -cf - "$(basename "$DATA_SRC")" | xz -9 -T2 >"$PACK/gaiic2021.tar.xz.tmp"
  mv "$PACK/gaiic2021.tar.xz.tmp" "$PACK/gaiic2021.tar.xz"
  rm -f "$PACK/wasm-run.json"
  if [[ -n "${GPU_CHECK_WASM_RUN:-}" ]]; then
    [[ -f "$GPU_CHECK_WASM_RUN/run.json" ]] || die "GPU_CHECK_WASM_RUN: no run.json in $GPU_CHECK_WASM_RUN"
    cp "$GPU_CHECK_WASM_RUN/run.json" "$PACK/wasm-run.json"
    say "   the wasm run to compare with: $GPU_CHECK_WASM_RUN/run.json"
  else
    say "   (no GPU_CHECK_WASM_RUN: the pipeline's metric is printed without the wasm run's)"
  fi

  say "== engine: dist/cli.js and the node_modules it loads"
  local list="$PACK/engine.files"
  engine_files >"$list"
  tar -cf - -T "$list" | xz -9 -T2 >"$PACK/engine.tar.xz.tmp"
  mv "$PACK/engine.tar.xz.tmp" "$PACK/engine.tar.xz"
  say "   $(wc -l <"$list") files, $(human "$(xargs -d '\n' stat -c %s <"$list" | awk '{ s += $1 } END { print s }')") unpacked"

  {
    say "engine: $(git -C "$ROOT" describe --always --dirty) ($(git -C "$ROOT" log -1 --format=%s | cut -c1-100))"
    say "prepared: $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n)"
    say "node: $(node -v)"
    say "debs: $(cd "$PACK/debs" && echo *.deb)"
    [[ -f "$PACK/wasm-run.json" ]] && say "wasm run: ${GPU_CHECK_WASM_RUN}"
  } >"$PACK/manifest.txt"

  say "== sizes"
  (cd "$PACK" && du -b node.xz engine.tar.xz torch_gpu_bench.py gaiic2021.tar.xz debs/*.deb | sed 's/^/   /')
  local pack_b tree_b
  pack_b=$(du -sb "$PACK" | cut -f1)
  tree_b=$(git -C "$ROOT" ls-files -z -co --exclude-standard | (cd "$ROOT" && du -cb --files0-from=- 2>/dev/null) | tail -n 1 | cut -f1)
  say "   .gpu-check: $(human "$pack_b"); with the working tree ($(human "$tree_b")): $(human $((pack_b + tree_b))) of the 64 MiB carry limit"
  ((pack_b + tree_b < 64 * MIB)) || say "   WARNING: over 64 MiB"

  verify_pack
}

# The packed engine, unpacked in a temporary folder (no node_modules above it), on this machine.
verify_pack() {
  local tmp icd rc=0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-verify.XXXXXX")
  mkdir -p "$tmp/engine"
  unxz_to "$PACK/node.xz" "$tmp/node" && chmod +x "$tmp/node"
  untar_xz "$PACK/engine.tar.xz" "$tmp/engine"
  say "== verify in $tmp: node dist/cli.js bench --help"
  (cd "$tmp/engine" && env -u NODE_PATH "$tmp/node" dist/cli.js bench --help | head -n 3 | sed 's/^/   /')
  icd=$(find_icd lvp_icd) || die "no lavapipe ICD (lvp_icd.json) here"
  say "== verify: bench --backend webgpu --shapes L1-H64-A2-F128 --steps 1 --no-torch --json (lavapipe: $icd)"
  (cd "$tmp/engine" && VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd" env -u NODE_PATH timeout -k 5 600 \
    "$tmp/node" dist/cli.js bench --backend webgpu --shapes L1-H64-A2-F128 --steps 1 --no-torch --json \
    >"$tmp/bench.json" 2>"$tmp/bench.err") || rc=$?
  grep -v '^    at ' "$tmp/bench.err" | sed 's/^/   | /'
  sed -n '/^{$/q;p' "$tmp/bench.json" | head -n 20 | sed 's/^/   > /' # Dawn's messages (stdout)
  if ((rc == 0)); then
    python3 -c 'import json, sys; t = open(sys.argv[1]).read(); r = json.loads(t[t.rfind("\n{\n") + 1:]); s = r["shapes"][0]
print("   ok: %s, %s: train %.0f tok/s, infer %.0f tok/s" % (r["backend"], s["name"], s["train_tokens_per_s"], s["infer_tokens_per_s"]))' "$tmp/bench.json"
  else
    say "   FAIL: the webgpu bench on lavapipe (exit $rc): $(last_line "$tmp/bench.err")"
  fi
  rm -rf "$tmp"
  say "prepared: $PACK (carry .gpu-check; on the GPU machine: bash scripts/gpu-check.sh)"
}

# ---------------------------------------------------------------------------------------------
# run (GPU machine) and local (here, lavapipe)

FAILS=()
ok() { say "ok    $1"; }
fail() {
  FAILS+=("$1")
  say "FAIL  $1: $2"
}

# Seconds a step may take: its cap, or what is left of the budget (0: no time left).
limit() {
  local cap=$1 left=$((DEADLINE - SECONDS))
  ((left < cap)) && cap=$left
  ((cap < 5)) && cap=0
  echo "$cap"
}

# run_step NAME CAP STDOUT CMD...: CMD under `timeout`, stdout to the file STDOUT ('-': the console),
# stderr to $OUT/NAME.err and then shown indented; a failure is one FAIL line, never the end.
run_step() {
  local name=$1 cap=$2 out=$3 t rc=0 t0=$SECONDS err
  shift 3
  err="$OUT/${name//[^A-Za-z0-9_.-]/_}.err"
  t=$(limit "$cap")
  if ((t == 0)); then
    fail "$name" "skipped, the time budget (${BUDGET} s) is spent"
    return 1
  fi
  say "-- $name (limit $t s)"
  if [[ "$out" == - ]]; then
    timeout -k 5 "$t" "$@" 2>"$err" || rc=$?
  else
    timeout -k 5 "$t" "$@" >"$out" 2>"$err" || rc=$?
  fi
  grep -v '^    at ' "$err" | tail -n 30 | sed 's/^/   | /' # (stack frames: in the .err file)
  if ((rc == 0)); then
    ok "$name ($((SECONDS - t0)) s)"
  elif ((rc == 124 || rc == 137)); then
    fail "$name" "timed out after $t s"
  else
    fail "$name" "exit $rc: $(last_line "$err")"
  fi
  return "$rc"
}

# Vulkan ICD json: GPU_CHECK_ICD, else NAME*.json in the loader's folders, the NVIDIA driver's
# share/vulkan/icd.d under /usr/local/nvidia*, and (last resort) anywhere.
find_icd() { # NAME (nvidia_icd | lvp_icd)
  local name=$1 f
  if [[ -n "${GPU_CHECK_ICD:-}" ]]; then
    echo "$GPU_CHECK_ICD"
    return 0
  fi
  for f in /usr/share/vulkan/icd.d/"$name"*.json /etc/vulkan/icd.d/"$name"*.json \
    /usr/local/nvidia*/share/vulkan/icd.d/"$name"*.json /usr/local/nvidia*/*/share/vulkan/icd.d/"$name"*.json; do
    [[ -f "$f" ]] && echo "$f" && return 0
  done
  f=$(timeout 30 find / -name "$name*.json" -not -path '/proc/*' -not -path '/sys/*' 2>/dev/null | head -n 1) || true
  [[ -n "$f" ]] && echo "$f"
}

step_libs() { # the debs: into / (GPU machine, root) only where missing; local: into a scratch root
  local deb pkg dest=/ added=() present=()
  if [[ "$MODE" == local || "$(id -u)" != 0 ]]; then
    dest="$WORK/sysroot"
    mkdir -p "$dest"
  fi
  say "-- libs: ${DEBS[*]} (into $dest, where missing)"
  for deb in "$PACK"/debs/*.deb; do
    pkg=$(basename "$deb")
    pkg=${pkg%%_*}
    if [[ "$MODE" != local ]] && grep -q "${SONAME[$pkg]:-none} " <<<"$LDCACHE"; then
      present+=("$pkg")
      continue
    fi
    timeout 60 bash -c "$(declare -f deb_extract); deb_extract \"\$1\" \"\$2\"" _ "$deb" "$dest" ||
      { fail "libs" "unpacking $pkg failed"; return 1; }
    added+=("$pkg")
  done
  if [[ "$dest" == / ]] && ((${#added[@]})); then
    ldconfig || /sbin/ldconfig || true
    LDCACHE=$(ld_cache)
  elif [[ "$MODE" != local ]]; then
    export LD_LIBRARY_PATH="$dest/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  ok "libs: unpacked ${added[*]:-nothing}${present:+; already there: ${present[*]}}"
}

step_node() {
  say "-- node: unxz"
  if timeout 60 bash -c "$(declare -f unxz_to); unxz_to \"\$1\" \"\$2\"" _ "$PACK/node.xz" "$WORK/node" &&
    chmod +x "$WORK/node" && NODE_V=$("$WORK/node" -v); then
    NODE="$WORK/node"
    ok "node $NODE_V"
  else
    fail "node" "could not unpack or start $PACK/node.xz"
    return 1
  fi
}

step_engine() {
  say "-- engine: unpack"
  mkdir -p "$WORK/engine"
  if timeout 60 bash -c "$(declare -f untar_xz); untar_xz \"\$1\" \"\$2\"" _ "$PACK/engine.tar.xz" "$WORK/engine" &&
    [[ -f "$WORK/engine/dist/cli.js" ]]; then
    ENGINE="$WORK/engine"
    ok "engine in $ENGINE"
  else
    fail "engine" "could not unpack $PACK/engine.tar.xz"
    return 1
  fi
}

step_icd() {
  local icd="" d glx want=nvidia_icd
  [[ "$MODE" == local ]] && want=lvp_icd
  say "-- vulkan ICD"
  # Driver libraries outside the linker's cache (e.g. GKE's /usr/local/nvidia/lib64).
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [[ -d "$d" ]] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
  done
  icd=$(find_icd "$want") || true
  if [[ "$MODE" != local ]]; then
    say "   NVIDIA user-space libraries: $( (grep -oE 'lib(GLX_nvidia|nvidia-glvkspirv|nvidia-glcore|cuda)\.so[.0-9]*' <<<"$LDCACHE" || true) | sort -u | tr '\n' ' ')"
    if [[ -z "$icd" ]]; then # the json is missing but the driver's Vulkan library may be there
      glx=$(grep -oE '/[^ ]*libGLX_nvidia\.so\.0$' <<<"$LDCACHE" | head -n 1) || true
      for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
        [[ -z "$glx" && -f "$d/libGLX_nvidia.so.0" ]] && glx="$d/libGLX_nvidia.so.0"
      done
      if [[ -n "$glx" ]]; then
        icd="$WORK/nvidia_icd.json"
        printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$glx" >"$icd"
        say "   no nvidia_icd.json found; wrote one for $glx"
      fi
    fi
  fi
  if [[ -z "$icd" ]]; then
    fail "vulkan ICD" "no $want.json found (and no libGLX_nvidia.so.0 to point one at)"
    return 1
  fi
  export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
  say "   $(tr -s ' \n' ' ' <"$icd" | cut -c1-200)"
  ok "VK_DRIVER_FILES=$icd"
}

# Dawn's adapter as the engine will see it (name, backend, a few limits), and the adapter list.
step_probe() {
  cat >"$WORK/probe.js" <<'JS'
const { create } = require(process.argv[2]);
(async () => {
  const gpu = create([]);
  const a = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!a) throw new Error('no WebGPU adapter (Dawn found no usable Vulkan device)');
  const l = a.limits;
  const i = a.info;
  console.log(`   adapter: ${i.description || i.device} (vendor ${i.vendor}, architecture ${i.architecture})`);
  const lim = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxStorageBuffersPerShaderStage',
    'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupStorageSize'];
  console.log(`   limits: ${lim.map((k) => `${k} ${l[k]}`).join(', ')}`);
  console.log(`   features: ${[...a.features].sort().join(' ')}`);
  try { await create(['adapter=no-such-adapter']).requestAdapter(); } catch (e) {
    console.log(`   all adapters: ${e.message.trim().split('\n').filter((x) => x.includes('backend:')).map((x) => x.replace(/^\W+/, '')).join('; ')}`);
  }
  process.exit(0);
})().catch((e) => { console.error(e.message); process.exit(1); });
JS
  run_step "webgpu adapter" 30 - env VK_LOADER_DEBUG=error "$NODE" "$WORK/probe.js" \
    "$ENGINE/node_modules/webgpu/dist/linux-x64/dawn.node"
}

# The PyTorch yardstick GPU_CHECK_TORCH_RUNS times (default 3, issue 19: small shapes vary by about
# 30% from run to run), only the shapes benched (its own loops left out; all of it with
# GPU_CHECK_TORCH_FULL=1); BERT-base (slow, and steady) only in the first run, to keep the 5 minutes;
# $OUT/torch.txt gets the median of each figure, in the yardstick's own line format.
step_torch() {
  if [[ "$MODE" == local ]] && ! timeout 60 python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    say "--    torch: skipped (local mode, no CUDA torch here)"
    return 0
  fi
  local runs=${GPU_CHECK_TORCH_RUNS:-3} k dims=() small=() shape
  IFS=, read -r -a shape_list <<<"$SHAPES"
  local d
  for shape in "${shape_list[@]}"; do # one PyTorch run per model (SHAPE and SHAPE+mixed share it)
    d=$(shape_dims "${shape%+*}")
    [[ " ${dims[*]} " == *" $d "* ]] || dims+=("$d")
  done
  for d in "${dims[@]}"; do [[ "$d" == 12,768,* ]] || small+=("$d"); done
  cat >"$WORK/torch_some.py" <<'PY'
import sys
src = open(sys.argv[1]).read()
if sys.argv[2] != "full":
    src = src[:src.index("\nfor s in ")]  # the yardstick's run() and settings, not its own shape loops
exec(compile(src, sys.argv[1], "exec"))
if sys.argv[2] != "full":
    for d in sys.argv[3:]: run(*map(int, d.split(",")))
    for d in sys.argv[3:]:  # BERT-base also under bf16 autocast, for comparison
        if d.startswith("12,768,"): run(*map(int, d.split(",")), amp=True)
PY
  local full=some
  [[ "${GPU_CHECK_TORCH_FULL:-}" == 1 ]] && full=full
  for ((k = 1; k <= runs; k++)); do
    local these=("${dims[@]}")
    if ((k > 1)) && [[ "$full" != full ]]; then
      ((${#small[@]} > 0)) || break
      these=("${small[@]}")
    fi
    run_step "torch run $k of $runs" 60 "$OUT/torch-$k.txt" python3 "$WORK/torch_some.py" "$PACK/torch_gpu_bench.py" "$full" "${these[@]}" || true
    sed 's/^/   /' "$OUT/torch-$k.txt"
  done
  python3 - "$OUT" "$runs" >"$OUT/torch.txt" <<'PY'
import re, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2]); figs = {}
pat = r"torch-cuda fp32 (L\d+-H\d+ A\d+ I\d+ B\d+ T\d+): train_tokens_per_s=([\d.]+) infer_tokens_per_s=([\d.]+)"
for k in range(1, runs + 1):
    try: text = open(f"{out}/torch-{k}.txt").read()
    except OSError: continue
    for m in re.finditer(pat, text): figs.setdefault(m[1], []).append((float(m[2]), float(m[3])))
for key, v in figs.items():
    tr = statistics.median(x[0] for x in v); inf = statistics.median(x[1] for x in v)
    print(f"torch-cuda fp32 {key}: train_tokens_per_s={tr:.0f} infer_tokens_per_s={inf:.0f} (median of {len(v)})")
amp = {}
pat = r"torch-cuda bf16-autocast (L\d+-H\d+ A\d+ I\d+ B\d+ T\d+): amp_train_tokens_per_s=([\d.]+) amp_infer_tokens_per_s=([\d.]+)"
for k in range(1, runs + 1):
    try: text = open(f"{out}/torch-{k}.txt").read()
    except OSError: continue
    for m in re.finditer(pat, text): amp.setdefault(m[1], []).append((float(m[2]), float(m[3])))
for key, v in amp.items():
    tr = statistics.median(x[0] for x in v); inf = statistics.median(x[1] for x in v)
    print(f"torch-cuda bf16-autocast {key}: amp_train_tokens_per_s={tr:.0f} amp_infer_tokens_per_s={inf:.0f} (median of {len(v)})")
PY
  say "   median of the runs:"
  sed 's/^/   /' "$OUT/torch.txt"
}

# "L4-H256" -> "4,256,4,1024": layers, hidden, heads (hidden/64), FFN (4 hidden), as the engine's parseShape.
shape_dims() {
  python3 -c 'import re, sys; m = re.match(r"L(\d+)-H(\d+)(?:-A(\d+))?(?:-F(\d+))?$", sys.argv[1]); L, H = int(m[1]), int(m[2])
print(f"{L},{H},{int(m[3] or max(1, round(H / 64)))},{int(m[4] or 4 * H)}")' "$1"
}

# The gaiic pipeline on webgpu in PRECISION (fp32 or mixed), from the command's start, with an empty
# cache (a fresh HOME each): each stage's minutes and the test metric, against the wasm run's
# (wasm-run.json) where packed; the mixed one's files are $OUT/pipeline-mixed*.
step_pipeline() { # PRECISION
  local precision=$1 tag=pipeline
  [[ "$precision" == mixed ]] && tag=pipeline-mixed
  if [[ "${GPU_CHECK_PIPELINE:-1}" == 0 ]]; then
    say "--    $tag: skipped (GPU_CHECK_PIPELINE=0)"
    return 0
  fi
  if [[ "$precision" == mixed && "${GPU_CHECK_PIPELINE_MIXED:-1}" == 0 ]]; then
    say "--    $tag: skipped (GPU_CHECK_PIPELINE_MIXED=0)"
    return 0
  fi
  local preset=${GPU_CHECK_PRESET:-gaiic} cap=120 t0 t1 rc=0 name data="$WORK/data/gaiic2021"
  [[ "$MODE" == local ]] && preset=${GPU_CHECK_PRESET:-tiny} cap=900
  if [[ "$MODE" == local && "${GPU_CHECK_LOCAL_DATA:-demo}" == demo ]]; then
    # lavapipe pretrains the tiny preset on the 8000 GAIIC rows in some 9 minutes: past the budget
    data="$WORK/data/demo"
    if [[ ! -d "$data" ]]; then
      say "-- data: demo-data, 400 + 80 rows (local mode; GPU_CHECK_LOCAL_DATA=gaiic: the packed rows)"
      if ! "$NODE" "$ENGINE/dist/cli.js" demo-data --out "$data" --train-rows 400 --test-rows 80 >/dev/null 2>"$OUT/demo-data.err"; then
        fail "$tag" "demo-data failed: $(last_line "$OUT/demo-data.err")"
        return 1
      fi
    fi
  elif [[ ! -d "$data" ]]; then
    say "-- data: unpack gaiic2021"
    mkdir -p "$WORK/data"
    if ! timeout 60 bash -c "$(declare -f untar_xz); untar_xz \"\$1\" \"\$2\"" _ "$PACK/gaiic2021.tar.xz" "$WORK/data"; then
      fail "$tag" "could not unpack $PACK/gaiic2021.tar.xz"
      return 1
    fi
  fi
  mkdir -p "$WORK/home-$precision"
  name="$tag --preset $preset --backend webgpu --precision $precision"
  t0=$(date +%s.%N)
  run_step "$name" "$cap" "$OUT/$tag.txt" env HOME="$WORK/home-$precision" \
    XDG_CACHE_HOME="$WORK/home-$precision/.cache" "$NODE" "$ENGINE/dist/cli.js" pipeline \
    --data "$data" --preset "$preset" --backend webgpu --precision "$precision" --test-split 0.2 \
    --run "$WORK/run-pipeline-$precision" || rc=$?
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v rc="$rc" 'BEGIN { printf "%.1f %d\n", b - a, rc }' >"$OUT/$tag-wall.txt"
  cp "$WORK/run-pipeline-$precision/run.json" "$OUT/$tag-run.json" 2>/dev/null || true
  [[ -f "$PACK/wasm-run.json" ]] && cp "$PACK/wasm-run.json" "$OUT/wasm-run.json"
  echo "$preset" >"$OUT/pipeline-preset.txt"
  # what fell back, the recordings, and each training run's split of its time (train/loop.ts formatStepTimes)
  grep -hE 'fell back|not recorded|recordings:|precision mixed|^[a-z]+: [0-9]+ epochs? in [0-9.]+ s: ' \
    "$OUT/${name//[^A-Za-z0-9_.-]/_}.err" 2>/dev/null | sed 's/^/   log: /' | head -n 32 || true
  tail -n 25 "$OUT/$tag.txt" | sed 's/^/   /'
}

# The matmul alone: tfjs's, each fp32 tile of ours and (precision mixed) the f16-input kernel and each
# subgroup-matrix (tensor-core) candidate that compiled and agreed with it, TFLOP/s at BERT-base's
# three shapes (each dimension an eighth on lavapipe), and what auto chose; the first engine start on
# this adapter measures, fp32 and mixed (kept in the engine's cache for the benches after it; the
# mixed measurement's log line, with what was left out and why, is in the .err lines printed). Where
# the adapter lacks shader-f16 the table has no f16 column and the .err file says why.
# Where that step fails (a subgroup-matrix kernel that takes the device down, say), the later steps
# run with BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX=off, so that the mixed benches and pipeline still run
# (on the f16 kernel; the pipeline's fresh cache would otherwise measure them again).
step_matmul() {
  local cap=90 rc=0
  [[ "$MODE" == local ]] && cap=300
  run_step "matmul alone (bench --matmul --precision mixed)" "$cap" "$OUT/matmul.txt" "$NODE" \
    "$ENGINE/dist/cli.js" bench --backend webgpu --precision mixed --matmul || rc=$?
  grep -v '^Warning' "$OUT/matmul.txt" | sed 's/^/   /'
  if ((rc != 0)); then
    export BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX=off
    say "   the steps after it run with BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX=off"
  fi
}

step_bench() { # SHAPE[+MATMUL|+mixed]: one engine process per shape, so that a hang or crash costs only that shape
  local shape=${1%+*} cap=60 matmul=auto precision=fp32
  # SHAPE+tfjs / +tiled / +ours: the matmuls forced (BERT_PRUNER_WEBGPU_MATMUL); SHAPE+mixed: precision
  # mixed (f16 matmul inputs, f32 accumulation, loss scaling); plain SHAPE: auto, the kernels the
  # engine measured fastest on this adapter (the first engine start measures, a few seconds)
  if [[ "$1" == *+mixed ]]; then
    precision=mixed
  elif [[ "$1" == *+* ]]; then
    matmul=${1##*+}
  fi
  case "$shape" in
    L2-H128) cap=45 ;;
    L12-*) cap=150 ;;
  esac
  # lavapipe runs the same programs on 2 CPU cores: minutes where a GPU takes seconds.
  if [[ "$MODE" == local ]]; then cap=$((cap * 8)); fi
  run_step "bench $1" "$cap" "$OUT/bench-$1.json" env BERT_PRUNER_WEBGPU_MATMUL="$matmul" "$NODE" \
    "$ENGINE/dist/cli.js" bench --backend webgpu --precision "$precision" --shapes "$shape" --steps "$STEPS" \
    --no-torch --json || true
  # Dawn prints its validation errors on stdout, ahead of the engine's JSON: show them too.
  sed -n '/^{$/q;p' "$OUT/bench-$1.json" | head -n 20 | sed 's/^/   > /'
}

# The ratio table from $OUT/bench-*.json and $OUT/torch.txt, the pipeline's stages, the targets;
# also $OUT/summary.json.
step_table() {
  say "-- results"
  [[ -s "$OUT/matmul.txt" ]] && grep -v '^Warning' "$OUT/matmul.txt"
  SHAPES="$SHAPES" TARGETS="$TARGET_SHAPES $TARGET_RATIO $PIPELINE_TARGET_S $METRIC_TOL" \
    BASE="$BASE_SHAPE $BASE_TRAIN $BASE_INFER $MIXED_TRAIN" timeout 30 python3 - "$OUT" <<'PY' ||
import json, os, re, sys
out = sys.argv[1]; shapes = os.environ["SHAPES"].split(",")
tshapes, tratio, tpipe, tol = os.environ["TARGETS"].split(); tshapes = tshapes.split(","); tratio, tpipe, tol = float(tratio), float(tpipe), float(tol)
def dims(name):  # as the engine's parseShape: heads hidden/64, FFN 4*hidden unless -A / -F say
    m = re.match(r"L(\d+)-H(\d+)(?:-A(\d+))?(?:-F(\d+))?(?:\+[\w:x-]+)?$", name); L, H = int(m[1]), int(m[2])
    return (L, H, int(m[3] or max(1, round(H / 64))), int(m[4] or 4 * H))
def bench_json(path):  # the engine's JSON is the last unindented '{' to the end (Dawn may print before it)
    t = open(path).read(); i = t.rfind("\n{\n")
    return json.loads(t[i + 1:] if i >= 0 else t)
def load(path):
    try: return json.load(open(path))
    except (OSError, ValueError): return None
base, btrain, binfer, mtrain = os.environ["BASE"].split(); btrain, binfer, mtrain = float(btrain), float(binfer), float(mtrain)
torch, amp = {}, {}
try:
    for m in re.finditer(r"bf16-autocast L(\d+)-H(\d+) A(\d+) I(\d+) B\d+ T\d+: amp_train_tokens_per_s=([\d.]+) amp_infer_tokens_per_s=([\d.]+)",
                         open(os.path.join(out, "torch.txt")).read()):
        amp[tuple(map(int, m.groups()[:4]))] = (float(m[5]), float(m[6]))
except OSError: pass
try:
    for m in re.finditer(r"L(\d+)-H(\d+) A(\d+) I(\d+) B\d+ T\d+: train_tokens_per_s=([\d.]+) infer_tokens_per_s=([\d.]+)",
                         open(os.path.join(out, "torch.txt")).read()):
        torch[tuple(map(int, m.groups()[:4]))] = (float(m[5]), float(m[6]))
except OSError: pass
rows, summary, notes, targets, profiles = [], {"shapes": []}, [], [], []
fmt = lambda v, d=0: "-" if v is None else f"{v:.{d}f}"
rat = lambda a, b: None if a is None or b is None else a / b
met = lambda ok: "?" if ok is None else ("met" if ok else "NOT met")
for name in shapes:
    ours = None
    try: r = bench_json(os.path.join(out, f"bench-{name}.json")); ours = r["shapes"][0]; notes.append(
        f"{name}: backend {r['backend']}, {r.get('webgpu_matmul', '?')} matmul, precision {r.get('precision', 'fp32')}, {r['steps']} timed steps; "
        f"pruned (1/4 heads+FFN) inference {r['pruned']['speedup']:.2f}x faster")
    except (OSError, ValueError, KeyError, IndexError): notes.append(f"{name}: no result from our bench")
    t = torch.get(dims(name))
    ot, oi = (ours["train_tokens_per_s"], ours["infer_tokens_per_s"]) if ours else (None, None)
    tt, ti = t if t else (None, None)
    tr, ir = rat(ot, tt), rat(oi, ti)
    g = lambda k: ours.get(k) if ours else None
    rows.append([name, fmt(ot), fmt(oi), fmt(tt), fmt(ti), "-" if tr is None else f"{tr:.2f}x",
                 "-" if ir is None else f"{ir:.2f}x", fmt(g("gpu_programs_per_train_step")), fmt(g("gpu_uploads_per_train_step"), 1),
                 fmt(g("gpu_bind_groups_per_train_step"), 1), fmt(g("gpu_buffers_created_per_train_step"), 1),
                 fmt(g("gpu_submits_per_train_step"), 1), fmt(g("host_ms_per_train_step"), 2),
                 "-" if g("gpu_replayed_train_steps") is None else f"{100 * g('gpu_replayed_train_steps'):.0f}%",
                 fmt(g("gpu_peak_mib"))])
    for key, what, wall in (("gpu_profile", "training step", "ms_per_train_batch"), ("gpu_infer_profile", "inference batch", "ms_per_infer_batch")):
        gp = g(key)  # where a replayed step's device time goes (timestamps): the kinds, then the slowest programs
        if not gp: continue
        rate = lambda x: f", {x['tflops']} TFLOP/s" if "tflops" in x else ""
        kinds = ", ".join(f"{k['kind']} {100 * k['share']:.0f}% ({k['programs']}, {k['us']:.0f} us, wg {k['workgroups'][0]}-{k['workgroups'][1]}{rate(k)})"
                          for k in gp["by_kind"][:8])
        slow = ", ".join(f"{x['name']}#{x['index']} [{x.get('detail', '')}] {x['us']:.0f} us (wg {x['workgroups']}{rate(x)})" for x in gp["slowest"][:6])
        # the device's share of the timed step's wall time: where it is low, the GPU waits on the host
        busy = f" ({100 * gp['device_us'] / 1000 / g(wall):.0f}% of the timed {g(wall):.2f} ms)" if g(wall) else ""
        profiles.append(f"{name} {what}: {gp['device_us']:.0f} us on the device{busy}, its {gp['programs']} programs alone "
                        f"{gp['programs_alone_us']:.0f} us; by kind: {kinds}; slowest: {slow}")
    ta = amp.get(dims(name))
    prec = "mixed" if name.endswith("+mixed") else "fp32"
    if ta and ours: notes.append(f"{name}: PyTorch bf16 autocast train {ta[0]:.0f} / infer {ta[1]:.0f} tok/s; ours {prec} / that: "
                                 f"{ot / ta[0]:.2f}x / {oi / ta[1]:.2f}x")
    if name == base + "+mixed":
        targets.append(f"{name} (mixed) train >= {mtrain}x PyTorch fp32: {met(None if tr is None else tr >= mtrain)} ({'-' if tr is None else f'{tr:.2f}x'})")
        ar = None if not ta or ot is None else ot / ta[0]
        targets.append(f"{name} (mixed) train / PyTorch bf16 autocast train: {'-' if ar is None else f'{ar:.2f}x'} (printed, no target)")
    if name == base:
        targets.append(f"{name} (fp32) train >= {btrain}x PyTorch fp32: {met(None if tr is None else tr >= btrain)} ({'-' if tr is None else f'{tr:.2f}x'})")
        targets.append(f"{name} (fp32) infer >= {binfer}x PyTorch fp32: {met(None if ir is None else ir >= binfer)} ({'-' if ir is None else f'{ir:.2f}x'})")
    if name in tshapes:
        targets.append(f"{name} train >= {tratio}x PyTorch: {met(None if tr is None else tr >= tratio)} ({'-' if tr is None else f'{tr:.2f}x'})")
        targets.append(f"{name} infer >= {tratio}x PyTorch: {met(None if ir is None else ir >= tratio)} ({'-' if ir is None else f'{ir:.2f}x'})")
    summary["shapes"].append({"shape": name, "ours": ours, "torch_train_tokens_per_s": tt, "torch_infer_tokens_per_s": ti,
                              "train_ratio": tr, "infer_ratio": ir})
head = ["shape", "ours train", "ours infer", "torch train", "torch infer", "train x", "infer x",
        "progs/step", "uploads", "bindgroups", "buffers", "submits", "host ms", "replayed", "peak MiB"]
w = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
for x in [head] + rows:
    print("  ".join(str(v).ljust(w[i]) if i == 0 else str(v).rjust(w[i]) for i, v in enumerate(x)).rstrip())
print("tok/s, batch 32 x 128, fp32 (SHAPE+mixed: ours in mixed precision); x = ours (webgpu) / PyTorch CUDA fp32 eager")
print("  (median of its runs); per timed train step:")
print("  GPU programs, uploads, bind groups and buffers created, queue submits, host ms encoding+submitting, share replayed;")
print("  peak MiB: the most the device's buffers held at once, warm-up (op by op, the capture) and timed steps")
for n in notes: print("  " + n)
if profiles:
    print("GPU time of a replayed training step and inference batch (timestamps, median of 3; wg = workgroups; #n = the program's place; [its output, a matmul's MxNxK]):")
    for n in profiles: print("  " + n)
# the pipeline
run, wasm = load(os.path.join(out, "pipeline-run.json")), load(os.path.join(out, "wasm-run.json"))
wall = None
try: wall, prc = open(os.path.join(out, "pipeline-wall.txt")).read().split(); wall, prc = float(wall), int(prc)
except (OSError, ValueError): prc = None
preset = (open(os.path.join(out, "pipeline-preset.txt")).read().strip() if os.path.exists(os.path.join(out, "pipeline-preset.txt")) else "?")
def final_metric(r):  # the pruned, re-fine-tuned model's test score (evaluate-pruned), else the unpruned one's
    st = (r or {}).get("stages", {})
    for k in ("evaluate-pruned", "evaluate"):
        v = st.get(k, {}).get("metrics", {}).get("score")
        if v is not None: return v
    return None
if run is not None or wall is not None:
    print()
    print(f"pipeline --preset {preset} --backend webgpu --test-split 0.2: {fmt(wall, 1)} s from the command's start (exit {prc})")
    st = (run or {}).get("stages", {}); ws = (wasm or {}).get("stages", {})
    print(f"  {'stage':<18} {'status':<8} {'webgpu min':>10} {'wasm min':>9}  test metric")
    for k, v in st.items():
        if k == "pipeline": continue
        m = v.get("metrics", {}); score = m.get("score")
        wv = ws.get(k, {})
        print(f"  {k:<18} {v.get('status', '?'):<8} {fmt(v.get('seconds', 0) / 60 if v.get('seconds') is not None else None, 2):>10} "
              f"{fmt(wv.get('seconds') / 60 if wv.get('seconds') is not None else None, 2):>9}  {fmt(score, 4) if score is not None else ''}")
    fm, wm = final_metric(run), final_metric(wasm)
    print(f"  test metric (the pipeline's final model): webgpu {fmt(fm, 4)}, wasm {fmt(wm, 4) if wasm else '(no wasm run packed)'}")
    if preset == "gaiic":
        targets.append(f"gaiic pipeline <= {tpipe:.0f} s from the command's start: {met(None if wall is None else (wall <= tpipe and prc == 0))} ({fmt(wall, 1)} s)")
        d = None if fm is None or wm is None else abs(fm - wm)
        targets.append(f"gaiic test metric within {tol} of wasm: {met(None if d is None else d <= tol)} (|diff| {fmt(d, 4)})")
    summary["pipeline"] = {"preset": preset, "wall_s": wall, "exit": prc, "metric": fm, "wasm_metric": wm}
# the mixed-precision pipeline: its test metric beside the fp32 one's
mrun = load(os.path.join(out, "pipeline-mixed-run.json"))
mwall = None
try: mwall, mrc = open(os.path.join(out, "pipeline-mixed-wall.txt")).read().split(); mwall, mrc = float(mwall), int(mrc)
except (OSError, ValueError): mrc = None
if mrun is not None or mwall is not None:
    print()
    print(f"pipeline --preset {preset} --backend webgpu --precision mixed --test-split 0.2: {fmt(mwall, 1)} s (exit {mrc})")
    mst = (mrun or {}).get("stages", {}); fst = (run or {}).get("stages", {})
    print(f"  {'stage':<18} {'status':<8} {'mixed min':>9} {'fp32 min':>9}  {'precision':<9}  test metric")
    mins = lambda v: fmt(v.get("seconds") / 60 if v.get("seconds") is not None else None, 2)
    for k, v in mst.items():
        if k == "pipeline": continue
        score = v.get("metrics", {}).get("score")
        print(f"  {k:<18} {v.get('status', '?'):<8} {mins(v):>9} {mins(fst.get(k, {})):>9}  {str(v.get('precision', '-')):<9}  "
              f"{fmt(score, 4) if score is not None else ''}")
    mm, ff = final_metric(mrun), final_metric(run)
    print(f"  test metric (the pipeline's final model): mixed {fmt(mm, 4)}, fp32 {fmt(ff, 4)}")
    d = None if mm is None or ff is None else abs(mm - ff)
    if preset == "gaiic":
        targets.append(f"gaiic test metric, mixed within {tol} of fp32: {met(None if d is None else d <= tol)} (|diff| {fmt(d, 4)})")
    summary["pipeline_mixed"] = {"preset": preset, "wall_s": mwall, "exit": mrc, "metric": mm, "fp32_metric": ff}
if targets:
    print()
    print("targets (issues 19 and 20):")
    for t in targets: print("  " + t)
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
PY
    fail "table" "the summary script failed"
}

finish() {
  local rc=$? list
  say ""
  if ((${#FAILS[@]})); then
    printf -v list '%s, ' "${FAILS[@]}"
    say "gpu-check: ${#FAILS[@]} step(s) failed (${list%, }); $((SECONDS - START)) s; results in $OUT"
    ((rc)) || rc=1
  else
    say "gpu-check: all steps ok; $((SECONDS - START)) s; results in $OUT"
  fi
  [[ "${GPU_CHECK_KEEP:-}" == 1 ]] || rm -rf "${WORK:?}"
  exec 1>&3 2>&4
  wait "$TEE_PID" 2>/dev/null || true
  exit "$rc"
}

run() {
  MODE=$1 # run | local
  if [[ "$MODE" == local ]]; then
    SHAPES=${GPU_CHECK_SHAPES:-L1-H64-A2-F128,L1-H64-A2-F128+mixed} STEPS=${GPU_CHECK_STEPS:-1}
  else
    SHAPES=${GPU_CHECK_SHAPES:-$BASE_SHAPE,$BASE_SHAPE+mixed,$TARGET_SHAPES} STEPS=${GPU_CHECK_STEPS:-20}
  fi
  EXTRA=${GPU_CHECK_EXTRA-}
  [[ "$MODE" == local ]] && EXTRA=${GPU_CHECK_EXTRA-}
  BUDGET=${GPU_CHECK_BUDGET_S:-290}
  if [[ "$MODE" == local ]]; then BUDGET=${GPU_CHECK_BUDGET_S:-900}; fi
  START=$SECONDS DEADLINE=$((SECONDS + BUDGET - 15)) # 15 s kept for the table
  OUT=${OUT:-./gpu-check-out}
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  exec 3>&1 4>&2
  exec > >(tee -a "$OUT/gpu-check.log") 2>&1
  TEE_PID=$!
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
  trap finish EXIT
  cd "$WORK"

  say "gpu-check ($MODE): $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -n), $(nproc) cores, budget $BUDGET s"
  say "shapes $SHAPES, $STEPS steps; output in $OUT"
  [[ -f "$PACK/engine.tar.xz" && -f "$PACK/node.xz" ]] ||
    die "$PACK is not prepared (bash scripts/gpu-check.sh prepare, then carry .gpu-check)"
  sed 's/^/  /' "$PACK/manifest.txt"

  LDCACHE=$(ld_cache)
  step_libs || true
  if step_node && step_engine; then
    step_icd || true
    if [[ "$MODE" == local ]]; then
      say "--    nvidia-smi: skipped (local mode)"
    else
      run_step "nvidia-smi" 20 - sh -c 'nvidia-smi -L && nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader' || true
    fi
    step_probe || true
    step_matmul
    local shape
    IFS=, read -r -a shape_list <<<"$SHAPES"
    for shape in "${shape_list[@]}"; do step_bench "$shape"; done
    step_torch
    step_pipeline fp32 || true
    step_pipeline mixed || true
    # then, while the budget lasts, the extra shapes (none by default; e.g. BERT-base on tfjs's matmul)
    IFS=, read -r -a shape_list <<<"$EXTRA"
    for shape in ${shape_list[@]+"${shape_list[@]}"}; do
      if ((DEADLINE - SECONDS >= 60)); then step_bench "$shape"; else say "--    bench $shape: skipped (under 60 s of the budget left)"; fi
    done
    SHAPES="$SHAPES${EXTRA:+,$EXTRA}"
  else
    step_torch
  fi
  step_table
}

case "${1:-run}" in
  prepare) prepare ;;
  run) run run ;;
  local | --dry-run) run local ;;
  table) # the table again, from an earlier run's $OUT
    OUT=${OUT:-./gpu-check-out} SHAPES=${GPU_CHECK_SHAPES:-$BASE_SHAPE,$BASE_SHAPE+mixed,$TARGET_SHAPES} FAILS=()
    step_table
    ;;
  -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown mode '$1' (prepare | run | local | table | --help)" ;;
esac
