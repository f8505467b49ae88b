// The HTML shell of every panel: a strict Content-Security-Policy that allows only our own bundled
// script (by nonce) and stylesheet (from the extension's folder), nothing remote, nothing inline.
import { randomBytes } from 'node:crypto';

export function makeNonce(): string {
  return randomBytes(18)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '');
}

export interface PanelHtmlOptions {
  title: string;
  cspSource: string; // webview.cspSource
  scriptUri: string; // webview.asWebviewUri(dist/webview/panels.js)
  styleUri: string; // webview.asWebviewUri(media/panel.css)
  nonce: string;
  panel: 'training' | 'params' | 'report';
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

export function panelHtml(o: PanelHtmlOptions): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(o.cspSource, o.nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(o.styleUri)}">
<title>${escapeHtml(o.title)}</title>
</head>
<body data-panel="${o.panel}">
<header><h1 id="title">${escapeHtml(o.title)}</h1><div id="actions"></div></header>
<div id="problems" class="problems" hidden></div>
<main id="root"><p class="empty">Loading…</p></main>
<script nonce="${o.nonce}" src="${escapeHtml(o.scriptUri)}"></script>
</body>
</html>`;
}
