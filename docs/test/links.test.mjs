// The site's link check, shown to catch what it is for: a copy of the built
// sources (DOCS_SRC, from docs/build.sh) builds with MkDocs --strict as it
// is, and fails, naming the link, once a page links to a missing page, a
// missing heading of another page, or a missing heading of its own.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const mkdocs = process.env.MKDOCS;
const src = process.env.DOCS_SRC;
if (!mkdocs || !src) throw new Error('run through docs/build.sh (MKDOCS and DOCS_SRC unset)');

/** Builds a copy of the sources, after `edit(dir)`; returns the status and the output. */
function buildCopy(edit) {
  const dir = mkdtempSync(path.join(tmpdir(), 's3bgu-docs-'));
  try {
    cpSync(src, dir, { recursive: true });
    edit(dir);
    const run = spawnSync(
      mkdocs,
      ['build', '--strict', '-f', path.join(dir, 'mkdocs.yml'), '-d', path.join(dir, 'site')],
      { encoding: 'utf8' },
    );
    return { status: run.status, output: `${run.stdout}${run.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const addLine = (dir, page, line) => appendFileSync(path.join(dir, 'content', page), `\n${line}\n`);

test('the pages as they are build with --strict', () => {
  const { status, output } = buildCopy(() => {});
  assert.equal(status, 0, output);
});

test('a link to a missing page fails the build and is named', () => {
  const { status, output } = buildCopy(dir =>
    addLine(dir, 'index.md', 'See [the fake](testing-with-the-fake.md).'),
  );
  assert.notEqual(status, 0);
  assert.match(output, /testing-with-the-fake\.md/);
});

test('a link to a missing heading of another page fails the build and is named', () => {
  const { status, output } = buildCopy(dir =>
    addLine(dir, 'getting-started.md', 'See [statuses](backend-contract.md#no-such-heading).'),
  );
  assert.notEqual(status, 0);
  assert.match(output, /no-such-heading/);
});

test('a link to a missing heading of the same page fails the build and is named', () => {
  const { status, output } = buildCopy(dir =>
    addLine(dir, 'errors.md', 'See [below](#not-a-heading-here).'),
  );
  assert.notEqual(status, 0);
  assert.match(output, /not-a-heading-here/);
});

test('a link into the generated API reference is checked too', () => {
  const { status, output } = buildCopy(dir =>
    addLine(dir, 'index.md', 'See [setConfig](api/functions/noSuchFunction.md).'),
  );
  assert.notEqual(status, 0);
  assert.match(output, /noSuchFunction\.md/);
});
