/// <reference lib="dom" />
// The one script of every panel page (dist/webview/panels.js): <body data-panel="..."> says which.
import { startParams } from './params';
import { startReport } from './report';
import { startTraining } from './training';

const starts: Record<string, () => void> = { training: startTraining, params: startParams, report: startReport };
starts[document.body.dataset.panel ?? '']?.();
