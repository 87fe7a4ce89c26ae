#!/usr/bin/env node
// The release's package.json bookkeeping, run by .github/workflows/release.yml
// before `npm pack`:
//
//   node scripts/release-meta.mjs fill [--package FILE]
//       sets repository, homepage and bugs from the repository the workflow
//       runs in (GITHUB_SERVER_URL, GITHUB_REPOSITORY): the public address is
//       not known to the sources, and npm's provenance check rejects a
//       package whose repository.url is not the repository that built it.
//   node scripts/release-meta.mjs check-version --tag vX.Y.Z [--published FILE] [--package FILE]
//       the tag names package.json's version; the version is at least
//       2.0.0 (1.1.x of this name is the seed library's) and above every
//       version npm already has (FILE: `npm view NAME versions --json`), so
//       `latest` never moves backwards. Prints the dist-tag to publish
//       under: `latest`, or `next` for a prerelease.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The first version of this major line: the name's 1.1.x is another library.
export const MIN_VERSION = '2.0.0';

const SEMVER = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

export function parseVersion(v) {
  const m = SEMVER.exec(v);
  if (!m) return null;
  return { major: +m[1], minor: +m[2], patch: +m[3], pre: m[4] ?? null };
}

/** Semver precedence of two parsed versions (prerelease identifiers compared as semver says). */
export function compareVersions(a, b) {
  for (const k of ['major', 'minor', 'patch']) {
    if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  }
  if (a.pre === b.pre) return 0;
  if (a.pre === null) return 1;
  if (b.pre === null) return -1;
  const x = a.pre.split('.');
  const y = b.pre.split('.');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] === undefined) return -1;
    if (y[i] === undefined) return 1;
    const nx = /^\d+$/.test(x[i]);
    const ny = /^\d+$/.test(y[i]);
    if (nx && ny && +x[i] !== +y[i]) return +x[i] < +y[i] ? -1 : 1;
    if (nx !== ny) return nx ? -1 : 1;
    if (!nx && x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

/** The fields npm and its website read, for https://SERVER/OWNER/NAME. */
export function repositoryFields(serverUrl, repository) {
  if (!/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/.test(repository ?? '')) {
    throw new Error(`GITHUB_REPOSITORY must be OWNER/NAME, got ${JSON.stringify(repository)}`);
  }
  let server;
  try {
    server = new URL(serverUrl || 'https://github.com');
  } catch {
    throw new Error(`GITHUB_SERVER_URL is not a URL: ${JSON.stringify(serverUrl)}`);
  }
  if (server.protocol !== 'https:')
    throw new Error(`GITHUB_SERVER_URL must be https, got ${server.href}`);
  const web = `${server.origin}/${repository}`;
  return {
    repository: { type: 'git', url: `git+${web}.git` },
    homepage: `${web}#readme`,
    bugs: { url: `${web}/issues` },
  };
}

/** package.json's text with the repository fields set; refuses to point an existing field elsewhere. */
export function fillPackageJson(text, fields) {
  const pkg = JSON.parse(text);
  const current = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
  const normalize = u =>
    (u ?? '')
      .replace(/^git\+/, '')
      .replace(/\.git$/, '')
      .toLowerCase();
  if (current && normalize(current) !== normalize(fields.repository.url)) {
    throw new Error(
      `package.json's repository is ${current}, but this workflow runs in ${fields.repository.url}: ` +
        'remove the field (the release fills it) or fix it',
    );
  }
  // Insert after `description` when absent, so a diff of the tarball's
  // package.json reads naturally; JSON key order is otherwise irrelevant.
  const out = {};
  for (const [k, v] of Object.entries(pkg)) {
    if (k in fields) continue;
    out[k] = v;
    if (k === 'description') Object.assign(out, fields);
  }
  if (!('repository' in out)) Object.assign(out, fields);
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** Errors (empty when fine) and the dist-tag for publishing `version` at `tag`. */
export function checkVersion(version, tag, published = []) {
  const errors = [];
  const v = parseVersion(version);
  if (!v)
    return {
      errors: [`package.json's version ${JSON.stringify(version)} is not semver`],
      distTag: null,
    };
  if (tag !== `v${version}`)
    errors.push(`the tag is ${tag}, but package.json's version is ${version} (tag v${version})`);
  // Compared without prerelease: 2.0.0-rc.1 belongs to this line too.
  if (compareVersions({ ...v, pre: null }, parseVersion(MIN_VERSION)) < 0) {
    errors.push(
      `${version} is below ${MIN_VERSION}: 1.1.x of this name is the seed library's, this line starts at ${MIN_VERSION}`,
    );
  }
  if (published.includes(version)) errors.push(`${version} is already on npm`);
  const newer = published
    .map(p => [p, parseVersion(p)])
    .filter(([, p]) => p && compareVersions(p, v) > 0)
    .map(([p]) => p);
  if (newer.length > 0 && v.pre === null) {
    errors.push(
      `${version} is below ${newer.join(
        ', ',
      )} already on npm: publishing it as latest would move latest backwards`,
    );
  }
  return { errors, distTag: v.pre === null ? 'latest' : 'next' };
}

function arg(args, name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function main(argv) {
  const [command, ...args] = argv;
  const pkgFile = path.resolve(arg(args, '--package') ?? path.join(ROOT, 'package.json'));
  const text = readFileSync(pkgFile, 'utf8');
  if (command === 'fill') {
    const fields = repositoryFields(process.env.GITHUB_SERVER_URL, process.env.GITHUB_REPOSITORY);
    writeFileSync(pkgFile, fillPackageJson(text, fields));
    console.log(
      `release-meta: ${path.basename(pkgFile)} repository ${fields.repository.url}, homepage ${
        fields.homepage
      }`,
    );
    return 0;
  }
  if (command === 'check-version') {
    const tag = arg(args, '--tag');
    if (!tag) throw new Error('check-version needs --tag vX.Y.Z');
    const publishedFile = arg(args, '--published');
    let published = [];
    if (publishedFile) {
      const raw = readFileSync(publishedFile, 'utf8').trim();
      // `npm view` prints one string for a single version, an array otherwise, nothing for a new name.
      const parsed = raw === '' ? [] : JSON.parse(raw);
      published = Array.isArray(parsed) ? parsed : [parsed];
    }
    const { errors, distTag } = checkVersion(JSON.parse(text).version, tag, published);
    if (errors.length > 0) {
      for (const e of errors) console.error(`release-meta: ${e}`);
      return 1;
    }
    console.log(distTag);
    return 0;
  }
  console.error(
    'usage: release-meta.mjs fill | check-version --tag vX.Y.Z [--published FILE] [--package FILE]',
  );
  return 2;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    console.error(`release-meta: ${e.message}`);
    process.exitCode = 1;
  }
}
