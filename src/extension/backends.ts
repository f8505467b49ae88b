// The engine's backends as the extension offers them (pure, no vscode): one description each, which
// the Select Backend picker shows and package.json's `bertPruner.backend` enumDescriptions repeat
// (test/ext-commands.test.ts checks they are the same, in the engine's order), and the backend
// label the engine reports (`webgpu (NVIDIA H200)`, `wasm+openblas`) shortened for the status bar
// and the Runs view.
import type { BackendName } from '../engine/backend/index';

/** Every value of `bertPruner.backend`, in the engine's order (BACKEND_NAMES), with what it needs. */
export const BACKEND_DESCRIPTIONS: Readonly<Record<BackendName, string>> = {
  auto:
    'The fastest that loads: webgpu on a hardware GPU adapter (unless bench measured the CPU path faster ' +
    'for a model that size on this machine), then tensorflow-gpu, tensorflow, ' +
    'wasm (with the bundled OpenBLAS kernels where present), cpu.',
  webgpu:
    'The GPU through WebGPU (Vulkan, Metal or D3D12 via the bundled Dawn). A software adapter ' +
    '(lavapipe, llvmpipe) is used only when chosen here; bertPruner.webgpuAdapter picks one of several.',
  'tensorflow-gpu':
    'Native TensorFlow with CUDA: @tensorflow/tfjs-node-gpu (not bundled) needs CUDA 11.2 and cuDNN 8.1, ' +
    'internet at install time, and bertPruner.nodePath set to a Node.js its binaries match.',
  tensorflow:
    'Native TensorFlow on the CPU: @tensorflow/tfjs-node (not bundled) needs internet at install time ' +
    'and a Node.js its binaries match (bertPruner.nodePath).',
  wasm:
    'WebAssembly with SIMD and threads, always available; with the bundled OpenBLAS kernels on Linux x64 ' +
    '(glibc 2.34 or newer).',
  cpu: 'Plain JavaScript: slow, for checks.',
};

export const BACKEND_CHOICES = Object.keys(BACKEND_DESCRIPTIONS) as BackendName[];

/** The Select Backend picker's items: each backend with its description, the current one marked. */
export function backendPickItems(current: string): { label: BackendName; detail: string; description?: string }[] {
  return BACKEND_CHOICES.map((b) => ({
    label: b,
    detail: BACKEND_DESCRIPTIONS[b],
    description: b === current ? 'current' : undefined,
  }));
}

/** The message after a pick: where the adapter in use shows, for webgpu. */
export function backendPickedMessage(backend: string): string {
  const base = `BERT Pruner: the next runs use the ${backend} backend.`;
  return backend === 'webgpu'
    ? `${base} The adapter in use shows in the status bar and the Output once a run starts; ` +
        'bertPruner.webgpuAdapter picks one where there are several.'
    : base;
}

/**
 * A backend label short enough for the status bar and a tree description: `webgpu (NVIDIA H200)`
 * becomes `webgpu: NVIDIA H200`; past `max` characters the adapter name loses its parenthesised
 * details (`llvmpipe (LLVM 19.1.7, 256 bits)` -> `llvmpipe`), then its end (an ellipsis). The
 * full label goes in the tooltip.
 */
export function shortBackendLabel(label: string, max = 30): string {
  const flat = label.replace(/\s+/g, ' ').trim();
  const m = /^([^\s()]+) \((.*)\)$/.exec(flat);
  let s = m ? `${m[1]}: ${m[2]}` : flat;
  if (s.length > max && m) {
    const bare = m[2].replace(/\s*\([^()]*\)/g, '').trim();
    if (bare) s = `${m[1]}: ${bare}`;
  }
  return s.length > max ? `${s.slice(0, max - 1).trimEnd()}…` : s;
}
