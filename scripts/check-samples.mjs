#!/usr/bin/env node
// Type-checks the TypeScript samples of the documentation the way an app
// would compile them: every ```ts / ```tsx block of the given Markdown files
// (and the new side of every ```diff block, the "after" of a before/after
// change) becomes a module in DIR/readme-samples, compiled by the app's own
// TypeScript with the app's own tsconfig (its React Native template's), so
// the library's types come from the package the app installed.
//
//   node scripts/check-samples.mjs --app DIR FILE.md...
//
// Beyond tsc: a sample may not use top-level await (Metro's bundles are not
// ES modules, and older template configs refuse it), and a component a sample
// declares (a capitalised function without parameters) must return a React
// node, so one that returns nothing fails. Prints one line per sample
// and `samples: N passed, N failed`; exits 1 if any failed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TS_LANGS = new Set(['ts', 'tsx', 'typescript']);

/** The TypeScript blocks of one Markdown text, with the line each starts on. */
export function extractSamples(markdown, source) {
  const samples = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+)\s*([\w-]*)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    const body = [];
    let j = i + 1;
    while (j < lines.length && !lines[j].startsWith(`${indent}${fence}`)) {
      body.push(lines[j].slice(indent.length));
      j++;
    }
    const start = i + 2;
    i = j;
    if (TS_LANGS.has(lang)) {
      samples.push({
        source,
        line: start,
        lang: lang === 'tsx' ? 'tsx' : 'ts',
        code: body.join('\n'),
      });
    } else if (lang === 'diff' && body.some(l => /^[+-]\s*(import|export)\b/.test(l))) {
      // The new side: context lines and added lines, markers removed.
      const after = body.filter(l => !l.startsWith('-')).map(l => l.slice(1));
      samples.push({ source, line: start, lang: 'tsx', code: after.join('\n'), diff: true });
    }
  }
  return samples;
}

/** A sample's syntax tree, as TSX. */
function parseSample(ts, code) {
  return ts.createSourceFile('sample.tsx', code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TSX);
}

/** Lines (1-based) of `await` outside any function: top-level await. */
export function topLevelAwaits(ts, code) {
  const file = parseSample(ts, code);
  const found = [];
  const visit = node => {
    if (ts.isFunctionLike(node) || ts.isClassLike(node)) return;
    const isAwait =
      ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier !== undefined);
    if (isAwait) found.push(file.getLineAndCharacterOfPosition(node.getStart()).line + 1);
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(file, visit);
  return found;
}

/** Components a sample declares at top level: capitalised functions without parameters. */
export function declaredComponents(ts, code) {
  const file = parseSample(ts, code);
  const names = [];
  for (const s of file.statements) {
    if (
      ts.isFunctionDeclaration(s) &&
      s.name &&
      /^[A-Z]/.test(s.name.text) &&
      s.parameters.length === 0
    ) {
      names.push(s.name.text);
    }
  }
  return names;
}

/** The module text compiled for one sample. */
export function sampleModule(ts, sample) {
  let code = sample.code;
  if (!/^\s*(import|export)\b/m.test(code)) code += '\nexport {};';
  if (sample.lang === 'tsx') {
    for (const name of declaredComponents(ts, sample.code)) {
      // What it renders must be a React node, whatever the JSX settings: a
      // component that returns nothing fails here (never run, only compiled).
      code += `\nexport const rendered${name}: import('react').ReactNode = ${name}();`;
    }
  }
  return `${code}\n`;
}

/**
 * Writes the samples as modules into `dir` with a tsconfig extending
 * `extendsPath`, runs `tsc` (a path to typescript's bin/tsc) and returns one
 * result per sample: its errors (tsc's and the top-level await check).
 */
export function checkSamples({ ts, tscBin, samples, dir, extendsPath, compilerOptions = {} }) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = samples.map((sample, n) => {
    const base = `${path.basename(sample.source).replace(/\W+/g, '-')}-${sample.line}-${n}`;
    const file = `${base}.${sample.lang}`;
    writeFileSync(path.join(dir, file), sampleModule(ts, sample));
    return file;
  });
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    `${JSON.stringify(
      {
        extends: extendsPath,
        compilerOptions: { noEmit: true, ...compilerOptions },
        include: files,
      },
      null,
      2,
    )}\n`,
  );
  const run = spawnSync(
    process.execPath,
    [tscBin, '-p', path.join(dir, 'tsconfig.json'), '--pretty', 'false'],
    {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const output = `${run.stdout}${run.stderr}`;
  const errors = files.map(() => []);
  const general = [];
  for (const line of output.split('\n').filter(Boolean)) {
    const m = /^(.*?)\((\d+),(\d+)\): (error .*)$/.exec(line);
    const at = m ? files.indexOf(path.basename(m[1])) : -1;
    if (m && at >= 0 && path.resolve(m[1]).startsWith(path.resolve(dir))) {
      const line = Number(m[2]);
      const lines = samples[at].code.split('\n').length;
      // Lines past the sample are the checks appended to it (components render).
      errors[at].push(
        line > lines
          ? `the check that the sample's components render: ${m[4]}`
          : `line ${line + samples[at].line - 1}: ${m[4]}`,
      );
    } else if (/error/.test(line)) {
      general.push(line);
    }
  }
  samples.forEach((sample, n) => {
    for (const line of topLevelAwaits(ts, sample.code)) {
      errors[n].push(
        `line ${
          line + sample.line - 1
        }: top-level await (Metro does not bundle it; put it in a function)`,
      );
    }
  });
  if (run.status !== 0 && general.length === 0 && errors.every(e => e.length === 0)) {
    general.push(`tsc exited with ${run.status}: ${output.trim().slice(0, 2000)}`);
  }
  return { results: samples.map((sample, n) => ({ sample, errors: errors[n] })), general };
}

function main() {
  const args = process.argv.slice(2);
  const appAt = args.indexOf('--app');
  if (appAt < 0 || !args[appAt + 1]) {
    console.error('usage: check-samples.mjs --app DIR FILE.md...');
    process.exit(2);
  }
  const app = path.resolve(args[appAt + 1]);
  const docs = args.filter((_, i) => i !== appAt && i !== appAt + 1);
  const appRequire = createRequire(path.join(app, 'package.json'));
  const ts = appRequire('typescript');
  const tscBin = path.join(
    path.dirname(appRequire.resolve('typescript/package.json')),
    'bin',
    'tsc',
  );
  const rn = appRequire('react-native/package.json').version;
  // Named from the repository root, wherever the app is.
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const samples = docs.flatMap(f =>
    extractSamples(readFileSync(f, 'utf8'), path.relative(root, path.resolve(f))),
  );
  if (samples.length === 0) {
    console.error(`check-samples: no TypeScript samples in ${docs.join(', ')}`);
    process.exit(1);
  }
  // The template's global type packages, less those the scratch app left out
  // (React Native 0.76's config names jest's, which its jest dev dependency
  // provides): the samples use none of them.
  const config = ts.getParsedCommandLineOfConfigFile(
    path.join(app, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: d => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  const compilerOptions = {};
  if (config.options.types) {
    const present = config.options.types.filter(t => {
      const found = ts.resolveTypeReferenceDirective(
        t,
        path.join(app, 'index.ts'),
        config.options,
        ts.sys,
      );
      return found.resolvedTypeReferenceDirective !== undefined;
    });
    if (present.length !== config.options.types.length) {
      const left = config.options.types.filter(t => !present.includes(t));
      console.log(`note: global types not installed in this app, left out: ${left.join(', ')}`);
      compilerOptions.types = present;
    }
  }
  const { results, general } = checkSamples({
    ts,
    tscBin,
    samples,
    dir: path.join(app, 'readme-samples'),
    extendsPath: '../tsconfig.json',
    compilerOptions,
  });
  let failed = 0;
  for (const { sample, errors } of results) {
    const where = `${sample.source}:${sample.line}${sample.diff ? ' (diff, new side)' : ''}`;
    if (errors.length) {
      failed++;
      console.log(`FAIL ${where}`);
      for (const e of errors) console.log(`     ${e}`);
    } else {
      console.log(`ok   ${where}`);
    }
  }
  for (const g of general) console.log(`tsc: ${g}`);
  console.log(
    `samples (React Native ${rn}, TypeScript ${ts.version}): ${results.length - failed} passed, ${
      failed + (general.length ? 1 : 0)
    } failed`,
  );
  process.exit(failed || general.length ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}
