// The Maestro flows of example-app/e2e cannot run here (no emulator), but
// what ties them to the app and to run.sh can be checked: every element id
// a flow looks for is a testID the example app renders, and every ${VAR} a
// flow reads is passed by run.sh (`maestro test -e VAR=...`).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const E2E = path.join(ROOT, 'example-app/e2e');
const flows = readdirSync(E2E).filter(f => f.endsWith('.yaml'));
const runSh = readFileSync(path.join(E2E, 'run.sh'), 'utf8');
const appSources = ['App.tsx', 'src/UploadRow.tsx']
  .map(f => readFileSync(path.join(ROOT, 'example-app', f), 'utf8'))
  .join('\n');

/** testIDs the app renders: literal ones, and template ones as a prefix pattern. */
const literalIds = new Set([...appSources.matchAll(/testID="([^"]+)"/g)].map(m => m[1]));
const templateIds = [...appSources.matchAll(/testID=\{`([^`$]*)\$\{[^}]+\}`\}/g)].map(m => m[1]);

test('the flows exist and each names the app it drives', () => {
  assert.deepEqual(flows.sort(), ['start-upload.yaml', 'wait-completed.yaml']);
  for (const f of flows) {
    assert.match(readFileSync(path.join(E2E, f), 'utf8'), /^appId: \$\{APP_ID\}$/m, f);
  }
});

test('every id a flow looks for is a testID of the example app', () => {
  let checked = 0;
  for (const f of flows) {
    const text = readFileSync(path.join(E2E, f), 'utf8');
    for (const [, id] of text.matchAll(/^\s+id: (\S+)$/gm)) {
      const prefix = id.includes('${') ? id.slice(0, id.indexOf('${')) : null;
      const found = prefix === null ? literalIds.has(id) : templateIds.includes(prefix);
      assert.ok(
        found,
        `${f}: id ${id} is not rendered by the app (testIDs: ${[...literalIds]}, ${templateIds})`,
      );
      checked++;
    }
  }
  assert.ok(checked >= 8, `${checked} ids checked`);
});

test('every variable a flow reads is passed by run.sh', () => {
  const passed = new Set([...runSh.matchAll(/-e "?([A-Z_]+)=/g)].map(m => m[1]));
  for (const f of flows) {
    const text = readFileSync(path.join(E2E, f), 'utf8');
    for (const [, v] of text.matchAll(/\$\{([A-Z_]+)\}/g)) {
      assert.ok(
        passed.has(v),
        `${f} reads \${${v}}, which run.sh does not pass (passes: ${[...passed]})`,
      );
    }
  }
});
