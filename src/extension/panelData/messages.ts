// The messages webview panels send back, checked: a webview is a web page, so nothing it sends is
// trusted; every message goes through parseWebviewMessage first.
export type WebviewMessage =
  | { type: 'ready' } // the page loaded (or reloaded) and wants its data
  | { type: 'open'; path: string } // open a file the panel was given (a report, a checkpoint config)
  | { type: 'compare' } // parameters panel: pick a checkpoint to compare with
  | { type: 'add-run' } // training panel: pick runs to add
  | { type: 'remove-run'; run: string } // training panel: stop showing a run it shows
  | { type: 'export'; format: 'csv' | 'png'; name: string; data: string }; // training panel: save a file

/** The largest export a page may hand over (a CSV of every point, a PNG as a data URL). */
export const MAX_EXPORT_CHARS = 32 * 1024 * 1024;

export function parseWebviewMessage(
  x: unknown,
  allowedPaths: ReadonlySet<string>,
  allowedRuns: ReadonlySet<string> = new Set(),
): WebviewMessage | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return undefined;
  const m = x as Record<string, unknown>;
  const keys = Object.keys(m);
  if (m.type === 'ready' && keys.length === 1) return { type: 'ready' };
  if (m.type === 'compare' && keys.length === 1) return { type: 'compare' };
  if (m.type === 'add-run' && keys.length === 1) return { type: 'add-run' };
  // Only runs the panel shows.
  if (m.type === 'remove-run' && keys.length === 2 && typeof m.run === 'string' && allowedRuns.has(m.run)) {
    return { type: 'remove-run', run: m.run };
  }
  // An export: the user picks where it goes (a save dialog); the page gives only a plain file name.
  if (
    m.type === 'export' &&
    keys.length === 4 &&
    (m.format === 'csv' || m.format === 'png') &&
    typeof m.name === 'string' &&
    /^[\w.-]{1,100}$/.test(m.name) &&
    typeof m.data === 'string' &&
    m.data.length <= MAX_EXPORT_CHARS &&
    (m.format === 'csv' || m.data.startsWith('data:image/png;base64,'))
  )
    return { type: 'export', format: m.format, name: m.name, data: m.data };
  // Only paths the extension itself put into the panel: a page cannot make us open anything else.
  if (m.type === 'open' && keys.length === 2 && typeof m.path === 'string' && allowedPaths.has(m.path))
    return { type: 'open', path: m.path };
  return undefined;
}
